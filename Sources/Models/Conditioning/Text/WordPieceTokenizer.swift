import Foundation

/// Token ids of one caption, padded to the context length: [CLS] pieces… [SEP] [PAD]….
public struct TokenizedText: Equatable, Sendable {
    public let ids: [Int]
    /// Tokens that are not padding ([CLS] … [SEP]); the rest are masked in attention.
    public let length: Int
    /// Whether pieces past the context were cut off.
    public let truncated: Bool

    /// true for padding positions (the attention key mask).
    public var paddingMask: [Bool] { ids.indices.map { $0 >= length } }
}

/// BERT's uncased WordPiece tokenizer: basic tokenisation, then greedy longest-match-first
/// sub-words (continuations prefixed `##`); a word with no full segmentation, or longer than
/// 100 code points, is one [UNK].
public struct WordPieceTokenizer: Sendable {
    public let vocabulary: WordPieceVocabulary
    public let maxWordLength = 100

    public init(vocabulary: WordPieceVocabulary) { self.vocabulary = vocabulary }

    public init(contentsOf url: URL) throws { vocabulary = try WordPieceVocabulary(contentsOf: url) }

    /// Sub-word ids of `text` without [CLS]/[SEP].
    public func pieceIDs(_ text: String) -> [Int] {
        BasicTokenizer.tokenize(text).flatMap(wordPieces)
    }

    /// The pieces of `text` as strings (for inspection and tests).
    public func pieces(_ text: String) -> [String] { pieceIDs(text).map { vocabulary.tokens[$0] } }

    func wordPieces(_ word: String) -> [Int] {
        let scalars = Array(word.unicodeScalars)
        if scalars.count > maxWordLength { return [vocabulary.unknownID] }
        var ids: [Int] = []
        var start = 0
        while start < scalars.count {
            var end = scalars.count
            var found: Int?
            while start < end {
                let candidate = (start > 0 ? Array("##".unicodeScalars) : []) + scalars[start..<end]
                if let id = vocabulary.id(of: candidate) { found = id; break }
                end -= 1
            }
            guard let id = found else { return [vocabulary.unknownID] }
            ids.append(id)
            start = end
        }
        return ids
    }

    /// [CLS] pieces [SEP], cut to `contextLength` (the pieces truncated, [SEP] kept) and
    /// padded with [PAD].
    public func encode(_ text: String, contextLength: Int = 77) throws -> TokenizedText {
        guard contextLength >= 2 else { throw TokenizerError.contextTooShort(length: contextLength) }
        let pieces = pieceIDs(text)
        let kept = pieces.prefix(contextLength - 2)
        let ids = [vocabulary.classID] + kept + [vocabulary.separatorID]
        return TokenizedText(ids: ids + Array(repeating: vocabulary.padID, count: contextLength - ids.count),
                             length: ids.count, truncated: kept.count < pieces.count)
    }
}
