// Matrix products through cblas_sgemm, with their backward rules.

extension Tensor {
    /// Product of the last two dimensions: [..., m, k] · [..., k, n] → [..., m, n].
    /// Either operand may be transposed in its last two dimensions. A rank-2 `other` is shared
    /// by every batch entry of `self`; otherwise batch dimensions must be equal.
    public func matmul(_ other: Tensor, transposeSelf: Bool = false, transposeOther: Bool = false) -> Tensor {
        let a = self, b = other
        precondition(a.rank >= 2 && b.rank >= 2, "matmul needs rank ≥ 2, got \(a.shape) and \(b.shape)")
        let m = transposeSelf ? a.shape[a.rank - 1] : a.shape[a.rank - 2]
        let k = transposeSelf ? a.shape[a.rank - 2] : a.shape[a.rank - 1]
        let kb = transposeOther ? b.shape[b.rank - 1] : b.shape[b.rank - 2]
        let n = transposeOther ? b.shape[b.rank - 2] : b.shape[b.rank - 1]
        precondition(k == kb, "matmul: inner dimensions differ, \(a.shape)\(transposeSelf ? "ᵀ" : "") · \(b.shape)\(transposeOther ? "ᵀ" : "")")
        let batchA = Array(a.shape.dropLast(2)), batchB = Array(b.shape.dropLast(2))
        let batch = batchA.reduce(1, *)
        let sharedB = b.rank == 2
        precondition(sharedB || batchA == batchB, "matmul: batch dimensions \(batchA) and \(batchB) differ")
        if sharedB && !transposeSelf && batch > 1 {
            // Fold the batch into rows: one large GEMM instead of many small ones.
            let flat = a.reshaped([batch * m, k]).matmul(b, transposeOther: transposeOther)
            return flat.reshaped(batchA + [m, n])
        }
        let out = Tensor(uninitialized: batchA + [m, n])
        let lda = a.shape[a.rank - 1], ldb = b.shape[b.rank - 1]
        let strideA = m * k, strideB = sharedB ? 0 : k * n
        Tensor.batchedGEMM(batch: batch, m: m, n: n, k: k) { i in
            BLAS.sgemm(transposeA: transposeSelf, transposeB: transposeOther, m: m, n: n, k: k,
                       a: a.pointer + i * strideA, lda: lda, b: b.pointer + i * strideB, ldb: ldb,
                       c: out.pointer + i * m * n, ldc: n)
        }
        return out.recorded("matmul", inputs: [a, b]) { g in
            // C = op(A)·op(B): d op(A) = g·op(B)ᵀ and d op(B) = op(A)ᵀ·g (summed over the
            // batch when B is shared); transposed back when the operand was transposed.
            var ga: Tensor? = nil, gb: Tensor? = nil
            if a.requiresGrad {
                let dOpA = g.matmul(b, transposeOther: !transposeOther)
                ga = transposeSelf ? dOpA.transposed() : dOpA
            }
            if b.requiresGrad {
                if sharedB {
                    let opA = (transposeSelf ? a.transposed() : a).reshaped([batch * m, k])
                    let g2 = g.reshaped([batch * m, n])
                    gb = transposeOther ? g2.matmul(opA, transposeSelf: true) : opA.matmul(g2, transposeSelf: true)
                } else {
                    let dOpB = a.matmul(g, transposeSelf: !transposeSelf)
                    gb = transposeOther ? dOpB.transposed() : dOpB
                }
            }
            return [ga, gb]
        }
    }

    /// Runs `batch` independent GEMMs. Large ones use BLAS's own threads; many small ones are
    /// spread over cores with single-threaded BLAS instead, which is far faster for attention.
    static func batchedGEMM(batch: Int, m: Int, n: Int, k: Int, _ gemm: (Int) -> Void) {
        if batch > 1 && m * n * k < 1 << 21 && Parallel.threadCount > 1 {
            BLAS.singleThreaded { Parallel.forEach(batch, gemm) }
        } else {
            for i in 0..<batch { gemm(i) }
        }
    }
}
