import NN
import Tensor

/// The reference's `BERTEmbedder`: WordPiece ids of each caption ([CLS] … [SEP], padded to
/// the context length) through a `TextTransformer` trained from scratch with the UNet. The
/// context is [B, L, d] with the padding masked in every attention that reads it. The empty
/// caption is the null condition of classifier-free guidance.
public final class TextConditioner: Module, Conditioner {
    public let transformer: TextTransformer
    public let tokenizer: WordPieceTokenizer
    /// Captions cut to the context so far, and the first of them (for one warning per run).
    public private(set) var truncatedCaptions = 0
    public private(set) var firstTruncatedCaption: String?

    public init(tokenizer: WordPieceTokenizer, contextLength: Int, dim: Int, depth: Int, heads: Int, headChannels: Int,
                generator: inout RandomGenerator) {
        transformer = TextTransformer(vocabularySize: tokenizer.vocabulary.count, maxLength: contextLength, dim: dim,
                                      depth: depth, heads: heads, headChannels: headChannels, generator: &generator)
        self.tokenizer = tokenizer
    }

    public var contextLength: Int { transformer.maxLength }

    /// The context of `captions` as they are.
    public func context(captions: [String]) -> CrossAttentionContext {
        precondition(!captions.isEmpty, "TextConditioner: no captions")
        var ids: [Int] = []
        var mask: [[Bool]] = []
        for caption in captions {
            // contextLength ≥ 2 is validated with the config, so encoding cannot fail here.
            let encoded = try! tokenizer.encode(caption, contextLength: contextLength)
            if encoded.truncated {
                truncatedCaptions += 1
                if firstTruncatedCaption == nil { firstTruncatedCaption = caption }
            }
            ids += encoded.ids
            mask.append(encoded.paddingMask)
        }
        return CrossAttentionContext(tokens: transformer(ids: ids, batch: captions.count, paddingMask: mask), paddingMask: mask)
    }

    public func condition(_ batch: ConditionBatch, dropped: [Bool]) throws -> UNetConditioning {
        guard let captions = batch.captions else { throw ConditionerError.missingCaptions }
        let used = captions.enumerated().map { i, c in i < dropped.count && dropped[i] ? "" : c }
        return UNetConditioning(context: context(captions: used))
    }

    public func unconditional(count: Int) -> UNetConditioning {
        UNetConditioning(context: context(captions: Array(repeating: "", count: count)))
    }
}
