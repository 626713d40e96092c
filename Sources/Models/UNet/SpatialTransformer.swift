import NN
import Tensor

// ldm/modules/attention.py: the transformer that brings the conditioning into the UNet.

/// Multi-head attention with q/k/v projections without bias and an output Linear with bias
/// (`to_q`, `to_k`, `to_v`, `to_out.0`), scale d_head^-½. Without a context it attends to x.
public final class CrossAttention: Module {
    let toQ: Linear
    let toK: Linear
    let toV: Linear
    let toOut: Linear
    public let heads: Int
    public let headChannels: Int

    override public class var keyOverrides: [String: String] { ["toOut": "to_out.0"] }

    public init(queryDim: Int, contextDim: Int?, heads: Int, headChannels: Int, generator: inout RandomGenerator) {
        let inner = heads * headChannels
        toQ = Linear(queryDim, inner, bias: false, generator: &generator)
        toK = Linear(contextDim ?? queryDim, inner, bias: false, generator: &generator)
        toV = Linear(contextDim ?? queryDim, inner, bias: false, generator: &generator)
        toOut = Linear(inner, queryDim, generator: &generator)
        self.heads = heads
        self.headChannels = headChannels
    }

    /// x [B, N, queryDim], context [B, L, contextDim] (nil: self-attention) → [B, N, queryDim].
    public func callAsFunction(_ x: Tensor, context: CrossAttentionContext? = nil) -> Tensor {
        let source = context?.tokens ?? x
        precondition(source.shape[0] == x.shape[0], "attention: context batch \(source.shape[0]) for a batch of \(x.shape[0])")
        precondition(source.shape[2] == toK.inFeatures,
                     "attention: context width \(source.shape[2]), this layer's context_dim is \(toK.inFeatures)")
        let out = Tensor.scaledDotProductAttention(query: toQ(x), key: toK(source), value: toV(source), heads: heads,
                                                   scale: 1 / Float(headChannels).squareRoot(),
                                                   keyPaddingMask: context?.paddingMask)
        return toOut(out)
    }
}

/// GEGLU feed-forward: `net.0.proj` (dim → 2·4·dim), h·gelu(gate), `net.2` (4·dim → dim).
public final class FeedForward: Module {
    let proj: Linear
    let out: Linear

    override public class var keyOverrides: [String: String] { ["proj": "net.0.proj", "out": "net.2"] }

    public init(dim: Int, mult: Int = 4, generator: inout RandomGenerator) {
        proj = Linear(dim, 2 * mult * dim, generator: &generator)
        out = Linear(mult * dim, dim, generator: &generator)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { out(proj(x).geglu()) }
}

/// Pre-LayerNorm block: x += attn1(norm1 x); x += attn2(norm2 x, context); x += ff(norm3 x).
public final class BasicTransformerBlock: Module {
    let attn1: CrossAttention
    let ff: FeedForward
    let attn2: CrossAttention
    let norm1: LayerNorm
    let norm2: LayerNorm
    let norm3: LayerNorm

    public init(dim: Int, heads: Int, headChannels: Int, contextDim: Int?, generator: inout RandomGenerator) {
        attn1 = CrossAttention(queryDim: dim, contextDim: nil, heads: heads, headChannels: headChannels, generator: &generator)
        ff = FeedForward(dim: dim, generator: &generator)
        attn2 = CrossAttention(queryDim: dim, contextDim: contextDim, heads: heads, headChannels: headChannels, generator: &generator)
        norm1 = LayerNorm(dim)
        norm2 = LayerNorm(dim)
        norm3 = LayerNorm(dim)
    }

    public func callAsFunction(_ x: Tensor, context: CrossAttentionContext?) -> Tensor {
        var h = x + attn1(norm1(x))
        h = h + attn2(norm2(h), context: context)
        return h + ff(norm3(h))
    }
}

/// GroupNorm(32, eps 1e-6) → proj_in 1×1 → tokens [B, HW, C] → depth × BasicTransformerBlock
/// → back to [B, C, H, W] → zero-initialised proj_out 1×1 → + input.
public final class SpatialTransformer: Module, UNetLayer {
    let norm: GroupNorm
    let projIn: Conv2d
    let transformerBlocks: [BasicTransformerBlock]
    let projOut: Conv2d

    public init(channels: Int, heads: Int, headChannels: Int, depth: Int, contextDim: Int?, generator: inout RandomGenerator) {
        let inner = heads * headChannels
        norm = GroupNorm(groups: 32, channels: channels, eps: 1e-6)
        projIn = Conv2d(channels, inner, kernelSize: 1, generator: &generator)
        transformerBlocks = (0..<depth).map { _ in
            BasicTransformerBlock(dim: inner, heads: heads, headChannels: headChannels, contextDim: contextDim, generator: &generator)
        }
        projOut = Conv2d(inner, channels, kernelSize: 1, generator: &generator)
        projOut.zeroInitialize()
    }

    public func forward(_ x: Tensor, embedding: Tensor, context: CrossAttentionContext?) -> Tensor {
        let (b, hgt, wid) = (x.shape[0], x.shape[2], x.shape[3])
        let h = projIn(norm(x))
        let inner = h.shape[1]
        var tokens = h.reshaped([b, inner, hgt * wid]).transposed(1, 2)
        for block in transformerBlocks { tokens = block(tokens, context: context) }
        let back = tokens.transposed(1, 2).reshaped([b, inner, hgt, wid])
        return x + projOut(back)
    }
}

/// Plain multi-head self-attention over positions (the reference's `AttentionBlock`): norm
/// (GroupNorm32), `qkv` and zero-initialised `proj_out` as Conv1d weights [out, in, 1]. The
/// legacy order lays qkv channels out as (heads, 3, ch), the new one as (3, heads, ch).
public final class AttentionBlock: Module, UNetLayer {
    let norm: GroupNorm
    let qkvWeight: Tensor
    let qkvBias: Tensor
    let projOutWeight: Tensor
    let projOutBias: Tensor
    public let heads: Int
    let newOrder: Bool
    /// Rows of qkv in (3, heads, ch) order: where q, k, v of every head sit.
    let rowOrder: [Int]

    override public class var keyOverrides: [String: String] {
        ["qkvWeight": "qkv.weight", "qkvBias": "qkv.bias", "projOutWeight": "proj_out.weight", "projOutBias": "proj_out.bias"]
    }

    public init(channels: Int, heads: Int, newOrder: Bool, generator: inout RandomGenerator) {
        norm = unetNormalization(channels)
        qkvWeight = Initialization.kaimingUniform([3 * channels, channels, 1], fanIn: channels, generator: &generator).asParameter()
        qkvBias = Initialization.fanInUniform([3 * channels], fanIn: channels, generator: &generator).asParameter()
        projOutWeight = Tensor(zeros: [channels, channels, 1], requiresGrad: true)
        projOutBias = Tensor(zeros: [channels], requiresGrad: true)
        self.heads = heads
        self.newOrder = newOrder
        let ch = channels / heads
        // Legacy: head h's q, k, v are rows h·3ch + (0, ch, 2ch) + i.
        rowOrder = newOrder ? Array(0..<3 * channels)
            : (0..<3).flatMap { part in (0..<heads).flatMap { h in (0..<ch).map { h * 3 * ch + part * ch + $0 } } }
    }

    public func forward(_ x: Tensor, embedding: Tensor, context: CrossAttentionContext?) -> Tensor {
        let (b, c, hgt, wid) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let tokens = norm(x).reshaped([b, c, hgt * wid]).transposed(1, 2)   // [B, T, C]
        var w = qkvWeight.reshaped([3 * c, c]), bias = qkvBias.reshaped([3 * c, 1])
        if !newOrder {
            w = Tensor.embedding(table: w, indices: rowOrder)
            bias = Tensor.embedding(table: bias, indices: rowOrder)
        }
        let qkv = tokens.matmul(w, transposeOther: true) + bias.reshaped([3 * c])
        let parts = qkv.split(sizes: [c, c, c], alongAxis: 2)
        let attended = Tensor.scaledDotProductAttention(query: parts[0], key: parts[1], value: parts[2], heads: heads)
        let projected = attended.matmul(projOutWeight.reshaped([c, c]), transposeOther: true) + projOutBias
        return x + projected.transposed(1, 2).reshaped([b, c, hgt, wid])
    }
}
