import CLAPACK

/// Eigen-decomposition of a real symmetric matrix (LAPACK dsyevd, in Double): the building
/// block of the matrix square roots in the Fréchet distance.
public struct SymmetricEigen {
    /// Ascending eigenvalues.
    public let values: [Double]
    /// Eigenvectors as columns of an n×n row-major matrix: vectors[i * n + k] is component i of vector k.
    public let vectors: [Double]
    public let n: Int

    public enum Failure: Error, CustomStringConvertible {
        case notSquare(count: Int, n: Int)
        case nonFinite
        case lapack(info: Int32)

        public var description: String {
            switch self {
            case let .notSquare(count, n): return "eigen-decomposition: \(count) values do not make a \(n)×\(n) matrix"
            case .nonFinite: return "eigen-decomposition: the matrix has non-finite entries"
            case let .lapack(info): return "eigen-decomposition: LAPACK dsyevd failed (info \(info))"
            }
        }
    }

    /// `matrix` is n×n row-major and symmetric (only its upper triangle is read).
    public init(symmetric matrix: [Double], n: Int) throws {
        guard matrix.count == n * n else { throw Failure.notSquare(count: matrix.count, n: n) }
        guard matrix.allSatisfy(\.isFinite) else { throw Failure.nonFinite }
        self.n = n
        guard n > 0 else { values = []; vectors = []; return }
        // Row-major upper = column-major lower; LAPACK overwrites a with column-major vectors,
        // whose transpose is the row-major matrix whose columns are the vectors.
        var a = matrix
        var w = [Double](repeating: 0, count: n)
        var size = Int32(n), lda = Int32(n), info: Int32 = 0
        var lwork: Int32 = -1, liwork: Int32 = -1
        var workQuery = 0.0
        var iworkQuery: Int32 = 0
        dsyevd_("V", "L", &size, &a, &lda, &w, &workQuery, &lwork, &iworkQuery, &liwork, &info)
        guard info == 0 else { throw Failure.lapack(info: info) }
        lwork = Int32(workQuery)
        liwork = iworkQuery
        var work = [Double](repeating: 0, count: Int(lwork))
        var iwork = [Int32](repeating: 0, count: Int(liwork))
        dsyevd_("V", "L", &size, &a, &lda, &w, &work, &lwork, &iwork, &liwork, &info)
        guard info == 0 else { throw Failure.lapack(info: info) }
        values = w
        // a is column-major: column k (vector k) is a[k*n ..< (k+1)*n]; store row-major columns.
        var v = [Double](repeating: 0, count: n * n)
        for k in 0..<n { for i in 0..<n { v[i * n + k] = a[k * n + i] } }
        vectors = v
    }

    /// V f(Λ) Vᵀ: a function of the matrix (f applied to each eigenvalue), row-major.
    public func applying(_ f: (Double) -> Double) -> [Double] {
        var result = [Double](repeating: 0, count: n * n)
        let fv = values.map(f)
        for i in 0..<n {
            for j in i..<n {
                var s = 0.0
                for k in 0..<n { s += vectors[i * n + k] * fv[k] * vectors[j * n + k] }
                result[i * n + j] = s
                result[j * n + i] = s
            }
        }
        return result
    }
}
