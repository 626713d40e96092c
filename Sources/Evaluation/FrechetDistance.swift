import CBLAS
import Foundation

/// The Fréchet distance between two Gaussians fitted to feature sets (FID's formula,
/// Heusel et al. 2017): ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁Σ₂)^{1/2}.
///
/// tr (Σ₁Σ₂)^{1/2} is computed as tr (Σ₁^{1/2} Σ₂ Σ₁^{1/2})^{1/2}: the same eigenvalues, but of a
/// symmetric positive semi-definite matrix, so two symmetric eigen-decompositions give it
/// without the complex-valued square root of a non-symmetric product. Tiny negative
/// eigenvalues from rounding are clamped to zero.
public enum FrechetDistance {
    public enum Failure: Error, CustomStringConvertible {
        case tooFewSamples(name: String, count: Int, dimension: Int)
        case dimensionMismatch(Int, Int)

        public var description: String {
            switch self {
            case let .tooFewSamples(name, count, dimension):
                return "Fréchet distance: \(count) \(name) image(s) for \(dimension)-dimensional features; the covariance is "
                    + "singular below \(dimension + 1): use at least \(dimension + 1) (more is better: the estimate is biased "
                    + "upwards at small counts)"
            case let .dimensionMismatch(a, b): return "Fréchet distance: feature dimensions \(a) and \(b) differ"
            }
        }
    }

    /// From two sets' statistics; each must hold more images than the feature dimension.
    public static func between(_ a: FeatureStatistics, _ b: FeatureStatistics, names: (String, String) = ("first", "second")) throws -> Double {
        guard a.dimension == b.dimension else { throw Failure.dimensionMismatch(a.dimension, b.dimension) }
        let d = a.dimension
        for (stats, name) in [(a, names.0), (b, names.1)] where stats.count <= d {
            throw Failure.tooFewSamples(name: name, count: stats.count, dimension: d)
        }
        return try distance(meanA: a.mean, covarianceA: a.covariance, meanB: b.mean, covarianceB: b.covariance, dimension: d)
    }

    /// From means and covariances (row-major d×d).
    public static func distance(meanA: [Double], covarianceA: [Double], meanB: [Double], covarianceB: [Double],
                                dimension d: Int) throws -> Double {
        var meanTerm = 0.0
        for i in 0..<d { meanTerm += (meanA[i] - meanB[i]) * (meanA[i] - meanB[i]) }
        var traces = 0.0
        for i in 0..<d { traces += covarianceA[i * d + i] + covarianceB[i * d + i] }
        let rootA = try SymmetricEigen(symmetric: covarianceA, n: d).applying { Swift.max($0, 0).squareRoot() }
        let inner = multiply(multiply(rootA, covarianceB, d), rootA, d)
        // Symmetrise away rounding before the second decomposition.
        var symmetric = inner
        for i in 0..<d { for j in 0..<d { symmetric[i * d + j] = 0.5 * (inner[i * d + j] + inner[j * d + i]) } }
        let traceRoot = try SymmetricEigen(symmetric: symmetric, n: d).values.reduce(0) { $0 + Swift.max($1, 0).squareRoot() }
        return meanTerm + traces - 2 * traceRoot
    }

    static func multiply(_ x: [Double], _ y: [Double], _ d: Int) -> [Double] {
        var out = [Double](repeating: 0, count: d * d)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(d), Int32(d), Int32(d), 1, x, Int32(d), y, Int32(d), 0, &out, Int32(d))
        return out
    }
}
