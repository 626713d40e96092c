import Foundation

/// BERT's basic tokenisation (uncased): drop control characters and turn whitespace into
/// spaces, put spaces around CJK ideographs, NFC-normalise, split on whitespace, lower-case,
/// strip accents (NFD, drop non-spacing marks), split punctuation into tokens of its own.
/// Works on Unicode scalars (code points), as the reference does, never on grapheme clusters.
public enum BasicTokenizer {
    public static func tokenize(_ text: String) -> [String] {
        var cleaned = String.UnicodeScalarView()
        for s in text.unicodeScalars {
            if s.value == 0 || s.value == 0xFFFD || isControl(s) { continue }
            if isWhitespace(s) {
                cleaned.append(" ")
            } else if isCJK(s) {
                cleaned.append(" "); cleaned.append(s); cleaned.append(" ")
            } else {
                cleaned.append(s)
            }
        }
        let normalized = String(cleaned).precomposedStringWithCanonicalMapping
        var tokens: [String] = []
        for word in whitespaceSplit(normalized) {
            let folded = stripAccents(lowercased(word))
            tokens += splitPunctuation(folded)
        }
        return tokens
    }

    /// Lower case per code point, with Greek final sigma (Σ at a word's end → ς) as
    /// Python's `str.lower` does.
    static func lowercased(_ word: String) -> String {
        let scalars = Array(word.unicodeScalars)
        var out = ""
        for (i, s) in scalars.enumerated() {
            if s.value == 0x03A3 {
                let casedBefore = scalars[..<i].last(where: { !$0.properties.isCaseIgnorable }).map { $0.properties.isCased } ?? false
                let casedAfter = scalars[(i + 1)...].first(where: { !$0.properties.isCaseIgnorable }).map { $0.properties.isCased } ?? false
                out.unicodeScalars.append(casedBefore && !casedAfter ? "\u{03C2}" : "\u{03C3}")
            } else {
                out += s.properties.lowercaseMapping
            }
        }
        return out
    }

    static func stripAccents(_ word: String) -> String {
        var out = String.UnicodeScalarView()
        for s in word.decomposedStringWithCanonicalMapping.unicodeScalars where s.properties.generalCategory != .nonspacingMark {
            out.append(s)
        }
        return String(out)
    }

    /// Every punctuation scalar becomes a token; runs of other scalars stay together.
    static func splitPunctuation(_ word: String) -> [String] {
        var tokens: [String] = []
        var current = String.UnicodeScalarView()
        for s in word.unicodeScalars {
            if isPunctuation(s) {
                if !current.isEmpty { tokens.append(String(current)); current = String.UnicodeScalarView() }
                tokens.append(String(s))
            } else {
                current.append(s)
            }
        }
        if !current.isEmpty { tokens.append(String(current)) }
        return tokens
    }

    /// Splits on the whitespace that survived cleaning (spaces, and anything the
    /// normalisation produced); empty pieces are dropped.
    static func whitespaceSplit(_ text: String) -> [String] {
        var pieces: [String] = []
        var current = String.UnicodeScalarView()
        for s in text.unicodeScalars {
            if isWhitespace(s) || s.properties.isWhitespace {
                if !current.isEmpty { pieces.append(String(current)); current = String.UnicodeScalarView() }
            } else {
                current.append(s)
            }
        }
        if !current.isEmpty { pieces.append(String(current)) }
        return pieces
    }

    static func isWhitespace(_ s: Unicode.Scalar) -> Bool {
        s == " " || s == "\t" || s == "\n" || s == "\r" || s.properties.generalCategory == .spaceSeparator
    }

    /// Categories C* except the whitespace control characters tab, newline, return.
    static func isControl(_ s: Unicode.Scalar) -> Bool {
        if s == "\t" || s == "\n" || s == "\r" { return false }
        switch s.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned: return true
        default: return false
        }
    }

    /// ASCII symbols count as punctuation too (`$`, `^`, `` ` ``, …), as in BERT.
    static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) { return true }
        switch s.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation: return true
        default: return false
        }
    }

    /// The CJK Unified Ideographs blocks (not Hangul, Hiragana or Katakana, which are
    /// written with spaces).
    static func isCJK(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F,
             0x2B740...0x2B81F, 0x2B820...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F: return true
        default: return false
        }
    }
}
