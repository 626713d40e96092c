import Foundation

/// The names, order and shapes of a replica's parameters, compared across ranks before
/// training: ranks that disagree would sum unrelated gradients without any error.
struct ParameterSignature: Codable, Equatable {
    struct Entry: Codable, Equatable {
        var name: String
        var shape: [Int]
    }

    var entries: [Entry]

    init(_ parameters: [(name: String, shape: [Int])]) {
        entries = parameters.map { Entry(name: $0.name, shape: $0.shape) }
    }

    func encoded() -> Data {
        // Key order is fixed so equal signatures give equal bytes on every rank.
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return try! encoder.encode(self)  // Strings and Ints always encode.
    }

    static func decoded(_ data: Data) throws -> ParameterSignature {
        try JSONDecoder().decode(ParameterSignature.self, from: data)
    }

    /// FNV-1a over the encoding: stable across processes (Swift's `Hasher` is seeded per
    /// process, so it cannot be compared between ranks).
    var digest: UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in encoded() { h = (h ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        return h
    }

    /// Where `other` (rank `otherRank`) first departs from `self` (rank `referenceRank`), or
    /// nil when they are equal.
    func firstDifference(from other: ParameterSignature, referenceRank: Int, otherRank: Int) -> String? {
        func describe(_ e: Entry) -> String { "'\(e.name)' \(e.shape)" }
        for (i, (a, b)) in zip(entries, other.entries).enumerated() where a != b {
            let what = a.name == b.name ? "shape of '\(a.name)'" : "name"
            return "rank \(otherRank) differs from rank \(referenceRank) in the \(what) at parameter #\(i): "
                + "rank \(referenceRank) has \(describe(a)), rank \(otherRank) has \(describe(b))"
        }
        guard entries.count != other.entries.count else { return nil }
        let common = min(entries.count, other.entries.count)
        let extra = entries.count > common ? entries[common] : other.entries[common]
        let holder = entries.count > common ? referenceRank : otherRank
        return "rank \(otherRank) has \(other.entries.count) parameters, rank \(referenceRank) has \(entries.count); "
            + "first unmatched is parameter #\(common) \(describe(extra)) on rank \(holder)"
    }
}
