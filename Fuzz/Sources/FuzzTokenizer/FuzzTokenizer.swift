import Foundation
import FuzzSupport
import Models

/// A vocab.txt and a caption of any bytes. The input is a 2-byte little-endian length L, then
/// L bytes of vocab.txt (read through the real file entry point), then the caption's bytes,
/// decoded as UTF-8 with invalid sequences replaced by U+FFFD (as `String(decoding:)` does).
/// A vocabulary the reader accepts must read back from the form a saved model carries it in;
/// the caption is encoded with it (or, when the file is refused, with a small fixed
/// vocabulary, so the caption's half keeps its coverage), and the encoding must be well formed.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTokenizer(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let start = min(size, 2)
    let declared = size >= 2 ? Int(data[0]) | Int(data[1]) << 8 : 0
    let end = min(size, start + declared)
    let url = ScratchFile.write(data + start, end - start, name: "vocab.txt")
    let caption = String(decoding: UnsafeBufferPointer(start: data + end, count: size - end), as: UTF8.self)

    var tokenizer = TokenizerInvariants.fallback
    if let vocabulary = try? WordPieceVocabulary(contentsOf: url) {
        TokenizerInvariants.checkRoundTrip(vocabulary)
        tokenizer = WordPieceTokenizer(vocabulary: vocabulary)
    }
    TokenizerInvariants.checkEncoding(tokenizer, caption)
    return 0
}

/// What must hold for every input; a violation is a crash, so libFuzzer keeps the input.
enum TokenizerInvariants {
    static let fallback: WordPieceTokenizer = {
        let letters = "abcdefghijklmnopqrstuvwxyz0123456789".map(String.init)
        let tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "!", ",", ".", "-", "'", "#"] + letters
            + letters.map { "##" + $0 } + ["photo", "of", "the", "boot", "##ing", "σ", "ς", "北", "京", "é", "ß"]
        return WordPieceTokenizer(vocabulary: try! WordPieceVocabulary(tokens: tokens, source: "fuzz fallback"))
    }()

    /// Tokens compare by code points, as the vocabulary does (String's == would identify
    /// canonically equivalent tokens).
    static func scalars(_ v: WordPieceVocabulary) -> [[Unicode.Scalar]] { v.tokens.map { Array($0.unicodeScalars) } }

    static func checkRoundTrip(_ vocabulary: WordPieceVocabulary) {
        let saved: WordPieceVocabulary
        do { saved = try WordPieceVocabulary(joined: vocabulary.joined, source: "metadata") } catch {
            fatalError("a vocabulary read from vocab.txt (\(vocabulary.count) tokens) is refused in its saved form: \(error)")
        }
        guard scalars(saved) == scalars(vocabulary) else {
            fatalError("a vocabulary of \(vocabulary.count) tokens reads back from its saved form as \(saved.count) other tokens")
        }
    }

    static func checkEncoding(_ tokenizer: WordPieceTokenizer, _ caption: String) {
        let v = tokenizer.vocabulary
        for word in BasicTokenizer.tokenize(caption) {
            guard !word.isEmpty, !word.unicodeScalars.contains(where: { $0.properties.isWhitespace }) else {
                fatalError("basic tokenisation produced an empty or whitespace word: \(Array(word.unicodeScalars))")
            }
        }
        let pieces = tokenizer.pieceIDs(caption)
        guard pieces.allSatisfy(v.tokens.indices.contains) else { fatalError("a piece id outside the vocabulary") }
        let context = 77
        let encoded: TokenizedText
        do { encoded = try tokenizer.encode(caption, contextLength: context) } catch { fatalError("encode failed: \(error)") }
        let kept = min(pieces.count, context - 2)
        guard encoded.ids.count == context, encoded.length == kept + 2, encoded.truncated == (pieces.count > kept),
              encoded.ids[0] == v.classID, encoded.ids[kept + 1] == v.separatorID,
              Array(encoded.ids[1..<(kept + 1)]) == Array(pieces.prefix(kept)),
              encoded.ids[(kept + 2)...].allSatisfy({ $0 == v.padID }) else {
            fatalError("a malformed encoding of \(pieces.count) pieces: \(encoded)")
        }
    }
}
