import CBLAS

/// The GEMM seam: every matrix product in the engine goes through here, to the process's
/// compute backend.
public enum BLAS {
    /// C[m×n] = alpha · op(A) · op(B) + beta · C, row-major, with leading dimensions given.
    @inline(__always)
    public static func sgemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                             alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                             b: UnsafePointer<Float>, ldb: Int,
                             beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        ComputeBackends.current.sgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                                      a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
    }

    /// Threads a GEMM may use (OPENBLAS_NUM_THREADS sets the default). Process-wide, so GEMMs
    /// issued from inside parallel loops see 1 (`singleThreaded`) whatever thread runs them.
    public static var threadCount: Int {
        get { gemmThreads }
        set {
            gemmThreads = max(newValue, 1)
            openblas_set_num_threads(Int32(gemmThreads))
        }
    }

    nonisolated(unsafe) static var gemmThreads = Int(openblas_get_num_threads())

    /// Runs `body` with single-threaded BLAS, for GEMMs issued from inside parallel loops.
    public static func singleThreaded<T>(_ body: () throws -> T) rethrows -> T {
        let previous = threadCount
        if previous == 1 { return try body() }
        threadCount = 1
        defer { threadCount = previous }
        return try body()
    }
}
