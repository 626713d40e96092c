import Distributed
import Foundation

/// Statistics of one metric over every image of a split, on all ranks together.
public struct MetricSummary: Codable, Equatable, Sendable {
    public var count: Int
    /// Mean and population standard deviation (divisor N, numpy's default) of the
    /// per-image values; nil when no image was scored.
    public var mean: Double?
    public var std: Double?
    public var min: Double?
    public var max: Double?

    public init(count: Int, mean: Double?, std: Double?, min: Double?, max: Double?) {
        self.count = count
        self.mean = mean
        self.std = std
        self.min = min
        self.max = max
    }
}

/// Sums per-image metric values on each rank and reduces them across ranks.
///
/// Each rank scores its own shard of the split; the global mean is the sum over all ranks
/// divided by the total count, so it is the same however the images were split (and also
/// when shards have different sizes or a rank has none) — unlike averaging per-rank means.
/// Sums are kept in Double so the order of addition changes the result only at rounding
/// level.
///
/// The metric names are fixed at creation, in the same order on every rank, because the
/// reduction packs them into one buffer that MPI combines element by element.
public struct MetricAccumulator: Sendable {
    public let names: [String]
    private var sums: [Double]
    private var sumsOfSquares: [Double]
    private var counts: [Double]
    private var minima: [Double]
    private var maxima: [Double]

    public init(names: [String]) {
        precondition(Set(names).count == names.count, "MetricAccumulator: duplicate metric names in \(names)")
        self.names = names
        sums = Array(repeating: 0, count: names.count)
        sumsOfSquares = sums
        counts = sums
        minima = Array(repeating: .infinity, count: names.count)
        maxima = Array(repeating: -.infinity, count: names.count)
    }

    private func index(of name: String) -> Int {
        guard let i = names.firstIndex(of: name) else {
            preconditionFailure("MetricAccumulator: unknown metric '\(name)'; declared: \(names)")
        }
        return i
    }

    /// Adds per-image values of one metric.
    public mutating func add(_ name: String, _ values: [Double]) {
        let i = index(of: name)
        for v in values {
            precondition(v.isFinite, "MetricAccumulator: non-finite value \(v) for metric '\(name)'")
            sums[i] += v
            sumsOfSquares[i] += v * v
            minima[i] = Swift.min(minima[i], v)
            maxima[i] = Swift.max(maxima[i], v)
        }
        counts[i] += Double(values.count)
    }

    public mutating func add(_ name: String, _ value: Double) { add(name, [value]) }

    /// This rank's values only.
    public var localSummaries: [String: MetricSummary] {
        summaries(sums: sums, squares: sumsOfSquares, counts: counts, minima: minima, maxima: maxima)
    }

    /// Statistics over the values added on all ranks. A collective: every rank must call it,
    /// with the same metric names (checked: ranks that disagree all throw).
    public func reduced(over communicator: Communicator) throws -> [String: MetricSummary] {
        let nameLists = try communicator.allgather(Data(names.joined(separator: "\n").utf8))
        if let other = nameLists.firstIndex(where: { $0 != nameLists[0] }) {
            throw CommunicatorError.replicaMismatch(
                rank: communicator.rank,
                message: "metric names on rank 0 (\(String(decoding: nameLists[0], as: UTF8.self).split(separator: "\n"))) "
                    + "differ from rank \(other) (\(String(decoding: nameLists[other], as: UTF8.self).split(separator: "\n")))")
        }
        let m = names.count
        var packed = sums + sumsOfSquares + counts
        try packed.withUnsafeMutableBufferPointer { try communicator.allreduce($0, op: .sum) }
        var lows = minima, highs = maxima
        try lows.withUnsafeMutableBufferPointer { try communicator.allreduce($0, op: .min) }
        try highs.withUnsafeMutableBufferPointer { try communicator.allreduce($0, op: .max) }
        return summaries(sums: Array(packed[0..<m]), squares: Array(packed[m..<2 * m]),
                         counts: Array(packed[2 * m..<3 * m]), minima: lows, maxima: highs)
    }

    private func summaries(sums: [Double], squares: [Double], counts: [Double],
                           minima: [Double], maxima: [Double]) -> [String: MetricSummary] {
        var result: [String: MetricSummary] = [:]
        for (i, name) in names.enumerated() {
            let n = counts[i]
            guard n > 0 else {
                result[name] = MetricSummary(count: 0, mean: nil, std: nil, min: nil, max: nil)
                continue
            }
            let mean = sums[i] / n
            // E[x²] − E[x]² can dip below zero by rounding when all values are equal.
            let variance = Swift.max(squares[i] / n - mean * mean, 0)
            result[name] = MetricSummary(count: Int(n), mean: mean, std: variance.squareRoot(),
                                         min: minima[i], max: maxima[i])
        }
        return result
    }
}
