import NN
import Tensor

// The first-stage building blocks of ldm/modules/diffusionmodules/model.py.
// Normalize = GroupNorm(32, eps 1e-6); nonlinearity = swish.

/// GroupNorm(32 groups, eps 1e-6), as the reference's `Normalize`.
func normalize(_ channels: Int) -> GroupNorm {
    GroupNorm(groups: 32, channels: channels, eps: 1e-6)
}

/// GN → swish → conv3 → GN → swish → dropout → conv3, plus a 1×1 `nin_shortcut` when the
/// channel count changes.
public final class ResnetBlock: Module {
    let norm1: GroupNorm
    let conv1: Conv2d
    let norm2: GroupNorm
    let dropout: Dropout
    let conv2: Conv2d
    let ninShortcut: Conv2d?
    /// Where dropout draws its masks (shared by the whole model).
    let randomSource: RandomSource

    public init(inChannels: Int, outChannels: Int, dropout p: Float = 0, randomSource: RandomSource,
                generator: inout RandomGenerator) {
        norm1 = normalize(inChannels)
        conv1 = Conv2d(inChannels, outChannels, kernelSize: 3, padding: 1, generator: &generator)
        norm2 = normalize(outChannels)
        dropout = Dropout(p)
        self.randomSource = randomSource
        conv2 = Conv2d(outChannels, outChannels, kernelSize: 3, padding: 1, generator: &generator)
        ninShortcut = inChannels == outChannels ? nil
            : Conv2d(inChannels, outChannels, kernelSize: 1, generator: &generator)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        var h = conv1(norm1.applyingSiLU(x))
        h = conv2(dropout(norm2.applyingSiLU(h), generator: &randomSource.generator))
        return (ninShortcut?(x) ?? x) + h
    }
}

/// Single-head self-attention over all positions, with 1×1 q/k/v/proj_out, scale c^-½.
public final class AttnBlock: Module {
    let norm: GroupNorm
    let q: Conv2d
    let k: Conv2d
    let v: Conv2d
    let projOut: Conv2d

    public init(channels: Int, generator: inout RandomGenerator) {
        norm = normalize(channels)
        q = Conv2d(channels, channels, kernelSize: 1, generator: &generator)
        k = Conv2d(channels, channels, kernelSize: 1, generator: &generator)
        v = Conv2d(channels, channels, kernelSize: 1, generator: &generator)
        projOut = Conv2d(channels, channels, kernelSize: 1, generator: &generator)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let (b, c, hgt, wid) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let h = norm(x)
        // [B, C, H, W] → [B, HW, C] token sequences.
        func tokens(_ t: Tensor) -> Tensor { t.reshaped([b, c, hgt * wid]).transposed(1, 2) }
        let attended = Tensor.scaledDotProductAttention(query: tokens(q(h)), key: tokens(k(h)), value: tokens(v(h)), heads: 1)
        let back = attended.transposed(1, 2).reshaped([b, c, hgt, wid])
        return x + projOut(back)
    }
}

/// Pad (left 0, right 1, top 0, bottom 1), then conv3 stride 2 without padding.
public final class Downsample: Module {
    let conv: Conv2d

    public init(channels: Int, generator: inout RandomGenerator) {
        conv = Conv2d(channels, channels, kernelSize: 3, stride: 2, padding: 0, generator: &generator)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        conv(x.padded(Padding2D(top: 0, bottom: 1, left: 0, right: 1)))
    }
}

/// Nearest ×2, then conv3.
public final class Upsample: Module {
    let conv: Conv2d

    public init(channels: Int, generator: inout RandomGenerator) {
        conv = Conv2d(channels, channels, kernelSize: 3, padding: 1, generator: &generator)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { conv(x.upsampledNearest(scale: 2)) }
}

/// Res, Attn, Res at the lowest resolution.
final class MidBlock: Module {
    let block1: ResnetBlock
    let attn1: AttnBlock
    let block2: ResnetBlock

    override class var keyOverrides: [String: String] { ["block1": "block_1", "attn1": "attn_1", "block2": "block_2"] }

    init(channels: Int, dropout: Float, randomSource: RandomSource, generator: inout RandomGenerator) {
        block1 = ResnetBlock(inChannels: channels, outChannels: channels, dropout: dropout, randomSource: randomSource,
                             generator: &generator)
        attn1 = AttnBlock(channels: channels, generator: &generator)
        block2 = ResnetBlock(inChannels: channels, outChannels: channels, dropout: dropout, randomSource: randomSource,
                             generator: &generator)
    }

    func callAsFunction(_ x: Tensor) -> Tensor { block2(attn1(block1(x))) }
}
