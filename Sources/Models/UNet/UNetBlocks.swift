import NN
import Tensor

// The UNet's own building blocks (openaimodel.py). Named apart from the first stage's
// ResnetBlock/Downsample/Upsample: their padding, norm eps and key names differ.

/// GroupNorm(32 groups, eps 1e-5): the reference's `normalization` (GroupNorm32).
func unetNormalization(_ channels: Int) -> GroupNorm {
    GroupNorm(groups: 32, channels: channels, eps: 1e-5)
}

/// The cross-attention context τ_θ(y): [B, L, D] tokens and, for padded text, which keys of
/// each entry are padding (excluded from attention).
public struct CrossAttentionContext {
    public let tokens: Tensor
    public let paddingMask: [[Bool]]?

    public init(tokens: Tensor, paddingMask: [[Bool]]? = nil) {
        precondition(tokens.rank == 3, "a cross-attention context is [B, L, D], got \(tokens.shape)")
        self.tokens = tokens
        self.paddingMask = paddingMask
    }

    /// The contexts of two batches stacked (for the doubled guidance batch).
    public static func concatenated(_ parts: [CrossAttentionContext]) -> CrossAttentionContext {
        let masks = parts.map(\.paddingMask)
        let mask: [[Bool]]? = masks.allSatisfy({ $0 == nil }) ? nil
            : zip(parts, masks).flatMap { part, m in m ?? Array(repeating: Array(repeating: false, count: part.tokens.shape[1]), count: part.tokens.shape[0]) }
        return CrossAttentionContext(tokens: Tensor.concatenate(parts.map(\.tokens), alongAxis: 0), paddingMask: mask)
    }
}

/// A layer of one UNet block (the reference's `TimestepEmbedSequential` passes the time
/// embedding to ResBlocks and the context to transformers; other layers take x alone).
public protocol UNetLayer: Module {
    /// `embedding` is SiLU(time embedding), shared by every ResBlock (each one's
    /// `emb_layers` starts with that SiLU).
    func forward(_ x: Tensor, embedding: Tensor, context: CrossAttentionContext?) -> Tensor
}

/// One entry of input_blocks / middle_block / output_blocks: layers "0", "1", … in order.
public final class UNetBlock: Module {
    public let layers: [any UNetLayer]

    public init(_ layers: [any UNetLayer]) { self.layers = layers }

    override public func namedMembers() -> [(String, ModuleMember)] {
        layers.enumerated().map { ("\($0.offset)", .module($0.element)) }
    }

    public func forward(_ x: Tensor, embedding: Tensor, context: CrossAttentionContext?) -> Tensor {
        layers.reduce(x) { $1.forward($0, embedding: embedding, context: context) }
    }
}

/// A bare convolution as a block layer (`input_blocks.0.0`).
extension Conv2d: UNetLayer {
    public func forward(_ x: Tensor, embedding: Tensor, context: CrossAttentionContext?) -> Tensor { self(x) }
}

/// in_layers (GN, SiLU, conv3) → + emb_layers(emb) per channel (or GN(h)·(1 + scale) + shift
/// with use_scale_shift_norm) → out_layers (GN, SiLU, dropout, zero-initialised conv3),
/// plus the input through skip_connection (identity, or a 1×1 conv when channels change).
public final class UNetResBlock: Module, UNetLayer {
    let inNorm: GroupNorm
    let inConv: Conv2d
    let embLinear: Linear
    let outNorm: GroupNorm
    let dropout: Dropout
    let outConv: Conv2d
    let skipConnection: Conv2d?
    let useScaleShiftNorm: Bool
    let randomSource: RandomSource

    override public class var keyOverrides: [String: String] {
        ["inNorm": "in_layers.0", "inConv": "in_layers.2", "embLinear": "emb_layers.1",
         "outNorm": "out_layers.0", "outConv": "out_layers.3"]
    }

    public init(channels: Int, embeddingChannels: Int, outChannels: Int, dropout p: Float, useScaleShiftNorm: Bool,
                randomSource: RandomSource, generator: inout RandomGenerator) {
        inNorm = unetNormalization(channels)
        inConv = Conv2d(channels, outChannels, kernelSize: 3, padding: 1, generator: &generator)
        embLinear = Linear(embeddingChannels, useScaleShiftNorm ? 2 * outChannels : outChannels, generator: &generator)
        outNorm = unetNormalization(outChannels)
        dropout = Dropout(p)
        outConv = Conv2d(outChannels, outChannels, kernelSize: 3, padding: 1, generator: &generator)
        outConv.zeroInitialize()
        skipConnection = channels == outChannels ? nil : Conv2d(channels, outChannels, kernelSize: 1, generator: &generator)
        self.useScaleShiftNorm = useScaleShiftNorm
        self.randomSource = randomSource
    }

    public func forward(_ x: Tensor, embedding: Tensor, context: CrossAttentionContext?) -> Tensor {
        var h = inConv(inNorm.applyingSiLU(x))
        let channels = h.shape[1]
        let e = embLinear(embedding)   // [B, C] or [B, 2C]
        if useScaleShiftNorm {
            let scale = e.slice(alongAxis: 1, 0..<channels).reshaped([h.shape[0], channels, 1, 1])
            let shift = e.slice(alongAxis: 1, channels..<2 * channels).reshaped([h.shape[0], channels, 1, 1])
            h = (outNorm(h) * (scale + 1) + shift).silu()
        } else {
            h = outNorm.applyingSiLU(h + e.reshaped([h.shape[0], channels, 1, 1]))
        }
        h = outConv(dropout(h, generator: &randomSource.generator))
        return (skipConnection?(x) ?? x) + h
    }
}

/// conv3 stride 2 padding 1, named `op` (or 2×2 average pooling without conv_resample).
public final class UNetDownsample: Module, UNetLayer {
    let op: Conv2d?

    public init(channels: Int, useConv: Bool, generator: inout RandomGenerator) {
        op = useConv ? Conv2d(channels, channels, kernelSize: 3, stride: 2, padding: 1, generator: &generator) : nil
    }

    public func forward(_ x: Tensor, embedding: Tensor, context: CrossAttentionContext?) -> Tensor {
        op?(x) ?? x.avgPool2d(kernel: 2, stride: 2)
    }
}

/// Nearest ×2, then conv3 padding 1 (`conv`) with conv_resample.
public final class UNetUpsample: Module, UNetLayer {
    let conv: Conv2d?

    public init(channels: Int, useConv: Bool, generator: inout RandomGenerator) {
        conv = useConv ? Conv2d(channels, channels, kernelSize: 3, padding: 1, generator: &generator) : nil
    }

    public func forward(_ x: Tensor, embedding: Tensor, context: CrossAttentionContext?) -> Tensor {
        let up = x.upsampledNearest(scale: 2)
        return conv?(up) ?? up
    }
}

extension Module {
    /// Sets every parameter to zero (the reference's `zero_module`).
    public func zeroInitialize() {
        for p in parameters() { p.pointer.update(repeating: 0, count: p.count) }
    }
}
