import CBLAS
import Distributed
import Tensor

/// The Gaussian a Fréchet distance compares: exact sums of feature vectors over a set of
/// images — the count, Σf and Σffᵀ in Double — so ranks can each add their own images and
/// reduce the sums, and the mean and covariance do not depend on how the set was split
/// (unlike averaging per-rank means or covariances).
public struct FeatureStatistics: Sendable, Equatable {
    public let dimension: Int
    public private(set) var count: Int = 0
    /// Σf, [d].
    public private(set) var sum: [Double]
    /// Σffᵀ, [d × d] row-major.
    public private(set) var outerSum: [Double]

    public init(dimension: Int) {
        precondition(dimension > 0, "FeatureStatistics: dimension must be positive")
        self.dimension = dimension
        sum = [Double](repeating: 0, count: dimension)
        outerSum = [Double](repeating: 0, count: dimension * dimension)
    }

    /// Adds the rows of `features` [N, d].
    public mutating func add(_ features: Tensor) {
        precondition(features.rank == 2 && features.shape[1] == dimension,
                     "FeatureStatistics: features \(features.shape) are not [N, \(dimension)]")
        let n = features.shape[0], d = dimension
        guard n > 0 else { return }
        let rows = features.scalars.map(Double.init)
        for r in 0..<n { for j in 0..<d { sum[j] += rows[r * d + j] } }
        // Σffᵀ += FᵀF in one GEMM.
        rows.withUnsafeBufferPointer { f in
            outerSum.withUnsafeMutableBufferPointer { s in
                cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(d), Int32(d), Int32(n), 1,
                            f.baseAddress, Int32(d), f.baseAddress, Int32(d), 1, s.baseAddress, Int32(d))
            }
        }
        count += n
    }

    /// The sums of every rank's statistics (a collective).
    public func reduced(over communicator: Communicator) throws -> FeatureStatistics {
        var packed = [Double(count)] + sum + outerSum
        try packed.withUnsafeMutableBufferPointer { try communicator.allreduce($0, op: .sum) }
        var result = FeatureStatistics(dimension: dimension)
        result.count = Int(packed[0])
        result.sum = Array(packed[1...dimension])
        result.outerSum = Array(packed[(1 + dimension)...])
        return result
    }

    public var mean: [Double] { sum.map { $0 / Double(max(count, 1)) } }

    /// Unbiased covariance (divisor N − 1, as numpy.cov), row-major.
    public var covariance: [Double] {
        let n = Double(count), mu = mean, d = dimension
        var c = [Double](repeating: 0, count: d * d)
        guard count > 1 else { return c }
        for i in 0..<d {
            for j in 0..<d { c[i * d + j] = (outerSum[i * d + j] - n * mu[i] * mu[j]) / (n - 1) }
        }
        return c
    }
}
