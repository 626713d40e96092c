import CBLAS
import Data
import Distributed
import Foundation

/// Improved precision and recall (Kynkäänniemi et al. 2019): each set's manifold is the union
/// of balls around its points, each ball's radius the distance to the point's k-th nearest
/// neighbour in its own set. Precision is the share of generated points inside the real
/// manifold (fidelity); recall the share of real points inside the generated one (coverage).
///
/// Every rank holds both feature sets (gathered beforehand); the rows are split between the
/// ranks and exact counts reduced, so the result does not depend on the world size.
public enum PrecisionRecall {
    public struct Result: Codable, Equatable, Sendable {
        public var precision: Double
        public var recall: Double
        public var k: Int
        public var realCount: Int
        public var fakeCount: Int

        enum CodingKeys: String, CodingKey {
            case precision, recall, k
            case realCount = "real_count", fakeCount = "fake_count"
        }
    }

    public enum Failure: Error, CustomStringConvertible {
        case tooFewPoints(name: String, count: Int, k: Int)
        case dimensionMismatch(Int, Int)

        public var description: String {
            switch self {
            case let .tooFewPoints(name, count, k):
                return "precision/recall: \(count) \(name) point(s); k = \(k) neighbours need at least \(k + 1)"
            case let .dimensionMismatch(a, b): return "precision/recall: feature dimensions \(a) and \(b) differ"
            }
        }
    }

    /// `real` and `fake` are row-major [count × dimension].
    public static func compute(real: [Float], fake: [Float], dimension d: Int, k: Int = 3,
                               communicator: Communicator = SingleProcessCommunicator()) throws -> Result {
        let nr = real.count / d, nf = fake.count / d
        guard real.count % d == 0, fake.count % d == 0 else { throw Failure.dimensionMismatch(real.count, fake.count) }
        guard nr > k else { throw Failure.tooFewPoints(name: "real", count: nr, k: k) }
        guard nf > k else { throw Failure.tooFewPoints(name: "generated", count: nf, k: k) }
        let r = real.map(Double.init), f = fake.map(Double.init)
        let realRadii = try radii(r, count: nr, dimension: d, k: k, communicator: communicator)
        let fakeRadii = try radii(f, count: nf, dimension: d, k: k, communicator: communicator)
        var counts = [
            Double(inside(f, count: nf, manifold: r, manifoldCount: nr, radii: realRadii, dimension: d, communicator: communicator)),
            Double(inside(r, count: nr, manifold: f, manifoldCount: nf, radii: fakeRadii, dimension: d, communicator: communicator)),
        ]
        try counts.withUnsafeMutableBufferPointer { try communicator.allreduce($0, op: .sum) }
        return Result(precision: counts[0] / Double(nf), recall: counts[1] / Double(nr), k: k, realCount: nr, fakeCount: nf)
    }

    static let blockRows = 256

    /// Squared distances from rows `rows` of `x` to every row of `y`, [rows.count × ny].
    static func squaredDistances(_ x: [Double], rows: Range<Int>, _ y: [Double], ny: Int, dimension d: Int,
                                 yNorms: [Double]) -> [Double] {
        let b = rows.count
        var out = [Double](repeating: 0, count: b * ny)
        x.withUnsafeBufferPointer { xp in
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(b), Int32(ny), Int32(d), -2,
                        xp.baseAddress! + rows.lowerBound * d, Int32(d), y, Int32(d), 0, &out, Int32(ny))
        }
        for (i, row) in rows.enumerated() {
            var norm = 0.0
            for j in 0..<d { norm += x[row * d + j] * x[row * d + j] }
            for j in 0..<ny { out[i * ny + j] = Swift.max(out[i * ny + j] + norm + yNorms[j], 0) }
        }
        return out
    }

    static func norms(_ x: [Double], count: Int, dimension d: Int) -> [Double] {
        (0..<count).map { i in (0..<d).reduce(0.0) { $0 + x[i * d + $1] * x[i * d + $1] } }
    }

    /// Each point's squared distance to its k-th nearest other point of the same set.
    static func radii(_ x: [Double], count n: Int, dimension d: Int, k: Int, communicator: Communicator) throws -> [Double] {
        let share = evaluationShard(count: n, rank: communicator.rank, worldSize: communicator.size)
        let xNorms = norms(x, count: n, dimension: d)
        var mine: [Double] = []
        for start in stride(from: share.lowerBound, to: share.upperBound, by: blockRows) {
            let rows = start..<Swift.min(start + blockRows, share.upperBound)
            let dist = squaredDistances(x, rows: rows, x, ny: n, dimension: d, yNorms: xNorms)
            for (i, row) in rows.enumerated() {
                // The k + 1 smallest, self (distance 0) included: the last is the k-th neighbour.
                var smallest: [Double] = []
                for j in 0..<n {
                    let v = j == row ? 0 : dist[i * n + j]
                    if smallest.count <= k {
                        smallest.insert(v, at: smallest.firstIndex { $0 > v } ?? smallest.count)
                    } else if v < smallest[k] {
                        smallest.removeLast()
                        smallest.insert(v, at: smallest.firstIndex { $0 > v } ?? smallest.count)
                    }
                }
                mine.append(smallest[k])
            }
        }
        let gathered = try communicator.allgather(mine)
        return gathered.flatMap { $0 }
    }

    /// How many of this rank's share of `points` lie within some ball of the manifold.
    static func inside(_ points: [Double], count n: Int, manifold: [Double], manifoldCount m: Int, radii: [Double],
                       dimension d: Int, communicator: Communicator) -> Int {
        let share = evaluationShard(count: n, rank: communicator.rank, worldSize: communicator.size)
        let mNorms = norms(manifold, count: m, dimension: d)
        var hits = 0
        for start in stride(from: share.lowerBound, to: share.upperBound, by: blockRows) {
            let rows = start..<Swift.min(start + blockRows, share.upperBound)
            let dist = squaredDistances(points, rows: rows, manifold, ny: m, dimension: d, yNorms: mNorms)
            for i in 0..<rows.count where (0..<m).contains(where: { dist[i * m + $0] <= radii[$0] }) { hits += 1 }
        }
        return hits
    }
}
