import NN
import Tensor

// The reference's text encoder (ldm/modules/x_transformer.py, `TransformerWrapper` around an
// `Encoder`), written from scratch with its state-dict key names.

/// x_transformer's `Attention` as the encoder uses it: multi-head self-attention, q/k/v
/// Linear without bias, `to_out` Linear with bias, scale d_head^-½. Padding keys are masked.
public final class TextSelfAttention: Module {
    let toQ: Linear
    let toK: Linear
    let toV: Linear
    let toOut: Linear
    public let heads: Int
    public let headChannels: Int

    public init(dim: Int, heads: Int, headChannels: Int, generator: inout RandomGenerator) {
        let inner = heads * headChannels
        toQ = Linear(dim, inner, bias: false, generator: &generator)
        toK = Linear(dim, inner, bias: false, generator: &generator)
        toV = Linear(dim, inner, bias: false, generator: &generator)
        toOut = Linear(inner, dim, generator: &generator)
        self.heads = heads
        self.headChannels = headChannels
    }

    /// x [B, L, dim], `paddingMask[b][j]` true for padding → [B, L, dim].
    public func callAsFunction(_ x: Tensor, paddingMask: [[Bool]]?) -> Tensor {
        toOut(Tensor.scaledDotProductAttention(query: toQ(x), key: toK(x), value: toV(x), heads: heads,
                                               scale: 1 / Float(headChannels).squareRoot(), keyPaddingMask: paddingMask))
    }
}

/// x_transformer's `FeedForward` (no GLU): `net.0.0` Linear(dim → mult·dim), exact GELU,
/// `net.2` Linear(mult·dim → dim).
public final class TextFeedForward: Module {
    let projIn: Linear
    let projOut: Linear

    override public class var keyOverrides: [String: String] { ["projIn": "net.0.0", "projOut": "net.2"] }

    public init(dim: Int, mult: Int = 4, generator: inout RandomGenerator) {
        projIn = Linear(dim, mult * dim, generator: &generator)
        projOut = Linear(mult * dim, dim, generator: &generator)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { projOut(projIn(x).gelu()) }
}

/// One entry of `attn_layers.layers`: [pre-LayerNorm "0", block "1"] with a plain residual
/// (the reference's third entry, `Residual`, has no parameters): x + block(norm(x)).
public final class PreNormLayer: Module {
    public let norm: LayerNorm
    public let attention: TextSelfAttention?
    public let feedForward: TextFeedForward?

    public init(dim: Int, attention: TextSelfAttention) {
        norm = LayerNorm(dim)
        self.attention = attention
        feedForward = nil
    }

    public init(dim: Int, feedForward: TextFeedForward) {
        norm = LayerNorm(dim)
        attention = nil
        self.feedForward = feedForward
    }

    override public func namedMembers() -> [(String, ModuleMember)] {
        [("0", .module(norm)), ("1", .module(attention.map { $0 as Module } ?? feedForward!))]
    }

    public func callAsFunction(_ x: Tensor, paddingMask: [[Bool]]?) -> Tensor {
        let h = norm(x)
        if let attention { return x + attention(h, paddingMask: paddingMask) }
        return x + feedForward!(h)
    }
}

/// x_transformer's `Encoder`: depth × (self-attention, feed-forward), pre-norm.
public final class TextEncoderLayers: Module {
    public let layers: [PreNormLayer]

    public init(dim: Int, depth: Int, heads: Int, headChannels: Int, generator: inout RandomGenerator) {
        var layers: [PreNormLayer] = []
        for _ in 0..<depth {
            layers.append(PreNormLayer(dim: dim, attention: TextSelfAttention(dim: dim, heads: heads, headChannels: headChannels,
                                                                              generator: &generator)))
            layers.append(PreNormLayer(dim: dim, feedForward: TextFeedForward(dim: dim, generator: &generator)))
        }
        self.layers = layers
    }

    public func callAsFunction(_ x: Tensor, paddingMask: [[Bool]]?) -> Tensor {
        layers.reduce(x) { $1($0, paddingMask: paddingMask) }
    }
}

/// x_transformer's `AbsolutePositionalEmbedding`: a learned row per position (`emb`).
public final class AbsolutePositionalEmbedding: Module {
    public let emb: Embedding

    public init(dim: Int, maxLength: Int, generator: inout RandomGenerator) {
        emb = Embedding(maxLength, dim, generator: &generator)
        emb.weight.scaleInPlace(0.02)  // the reference's normal_(std=0.02)
    }
}

/// `TransformerWrapper(return_embeddings=True)`: token + absolute position embeddings, the
/// encoder layers, a final LayerNorm → [B, L, dim]. The reference's `to_logits` head is never
/// used when only embeddings are returned, so it is not built (an imported reference state
/// dict carries `to_logits.*`, which has nothing to train here).
public final class TextTransformer: Module {
    public let tokenEmb: Embedding
    public let posEmb: AbsolutePositionalEmbedding
    public let attnLayers: TextEncoderLayers
    public let norm: LayerNorm

    public init(vocabularySize: Int, maxLength: Int, dim: Int, depth: Int, heads: Int, headChannels: Int,
                generator: inout RandomGenerator) {
        precondition(vocabularySize > 0 && maxLength > 0 && dim > 0 && depth >= 0 && heads > 0 && headChannels > 0,
                     "TextTransformer: sizes must be positive")
        tokenEmb = Embedding(vocabularySize, dim, generator: &generator)
        tokenEmb.weight.scaleInPlace(0.02)  // the reference's init_: normal_(std=0.02)
        posEmb = AbsolutePositionalEmbedding(dim: dim, maxLength: maxLength, generator: &generator)
        attnLayers = TextEncoderLayers(dim: dim, depth: depth, heads: heads, headChannels: headChannels, generator: &generator)
        norm = LayerNorm(dim)
    }

    public var dim: Int { tokenEmb.weight.shape[1] }
    public var maxLength: Int { posEmb.emb.weight.shape[0] }
    public var vocabularySize: Int { tokenEmb.weight.shape[0] }

    /// `ids` row-major [batch, length] (length ≤ maxLength), every id < vocabularySize;
    /// `paddingMask[b][j]` true where position j of entry b is padding.
    public func callAsFunction(ids: [Int], batch: Int, paddingMask: [[Bool]]?) -> Tensor {
        precondition(batch > 0 && ids.count % batch == 0, "TextTransformer: \(ids.count) ids for a batch of \(batch)")
        let length = ids.count / batch
        precondition(length <= maxLength, "TextTransformer: \(length) tokens, the context holds \(maxLength)")
        let tokens = tokenEmb(ids).reshaped([batch, length, dim])
        let positions = posEmb.emb(Array(0..<length))
        return norm(attnLayers(tokens + positions, paddingMask: paddingMask))
    }
}
