import NN
import Tensor

/// The pix2pix PatchGAN discriminator (NLayerDiscriminator, n_layers 3) used by the
/// autoencoder's adversarial loss. Keys follow taming-transformers (`main.{i}`).
///
/// conv4 s2 (in→64), LReLU 0.2; conv4 s2 →128, BN, LReLU; conv4 s2 →256, BN, LReLU;
/// conv4 s1 →512, BN, LReLU; conv4 s1 →1. Padding 1. Convs followed by BatchNorm have no
/// bias. Init: conv weights N(0, 0.02), BN weight N(1, 0.02), BN bias 0.
public final class PatchDiscriminator: Module {
    enum Layer {
        case conv(Conv2d)
        case batchNorm(BatchNorm2d)
        case leakyReLU
    }
    let layers: [Layer]

    public init(inChannels: Int, baseChannels ndf: Int = 64, layerCount: Int = 3, generator: inout RandomGenerator) {
        func conv(_ i: Int, _ o: Int, stride: Int, bias: Bool) -> Conv2d {
            let c = Conv2d(i, o, kernelSize: 4, stride: stride, padding: 1, bias: bias, generator: &generator)
            withoutGrad { c.weight.assign(Tensor.randomNormal(c.weight.shape, std: 0.02, generator: &generator)) }
            return c
        }
        func norm(_ channels: Int) -> BatchNorm2d {
            let bn = BatchNorm2d(channels)
            withoutGrad {
                bn.weight.assign(Tensor.randomNormal([channels], mean: 1, std: 0.02, generator: &generator))
                bn.bias.assign(Tensor(zeros: [channels]))
            }
            return bn
        }
        var layers: [Layer] = [.conv(conv(inChannels, ndf, stride: 2, bias: true)), .leakyReLU]
        var mult = 1
        for n in 1..<layerCount {
            let previous = mult
            mult = min(1 << n, 8)
            layers += [.conv(conv(ndf * previous, ndf * mult, stride: 2, bias: false)), .batchNorm(norm(ndf * mult)), .leakyReLU]
        }
        let previous = mult
        mult = min(1 << layerCount, 8)
        layers += [.conv(conv(ndf * previous, ndf * mult, stride: 1, bias: false)), .batchNorm(norm(ndf * mult)), .leakyReLU]
        layers.append(.conv(conv(ndf * mult, 1, stride: 1, bias: true)))
        self.layers = layers
    }

    override public func namedMembers() -> [(String, ModuleMember)] {
        layers.enumerated().compactMap { i, layer in
            switch layer {
            case .conv(let c): return ("main.\(i)", .module(c))
            case .batchNorm(let b): return ("main.\(i)", .module(b))
            case .leakyReLU: return nil
            }
        }
    }

    /// Its BatchNorm layers, in order.
    public var batchNormLayers: [BatchNorm2d] {
        layers.compactMap { if case .batchNorm(let b) = $0 { return b } else { return nil } }
    }

    /// Makes every BatchNorm layer synchronised over the ranks `reducer` sums over (nil: each
    /// rank normalises with its own samples' statistics, as DDP without SyncBatchNorm).
    public func setBatchNormStatisticsReducer(_ reducer: BatchNormStatisticsReducer?) {
        for layer in batchNormLayers { layer.statisticsReducer = reducer }
    }

    /// The logit map's side for a square input of side `size` (≤ 0: the input is too small).
    public static func outputSize(inputSize size: Int, layerCount: Int = 3) -> Int {
        var s = size
        for _ in 0..<layerCount { s = (s + 2 - 4) / 2 + 1 }  // k4 s2 p1
        for _ in 0..<2 { s = s + 2 - 4 + 1 }                 // k4 s1 p1, twice
        return s
    }

    /// Patch logits [B, 1, h, w].
    public func callAsFunction(_ x: Tensor) -> Tensor {
        var h = x
        for layer in layers {
            switch layer {
            case .conv(let c): h = c(h)
            case .batchNorm(let b): h = b(h)
            case .leakyReLU: h = h.leakyReLU(slope: 0.2)
            }
        }
        return h
    }
}
