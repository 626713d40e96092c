import Foundation

// Multi-head scaled dot-product attention on [B, L, D] tensors, heads split and merged by
// addressing (BLAS leading dimensions) rather than by permuted copies.
//
// Per (batch, head) task, one block of query rows at a time (so the scores stay in cache):
// S = scale·Q·Kᵀ, P = softmax(S) row-wise, O = P·V written straight into its column block of
// the output. Only the per-row log-sum-exp is kept for backward, which recomputes P (one
// GEMM) instead of holding B·heads·Lq·Lk probabilities alive.

extension Tensor {
    /// softmax(q·kᵀ·scale)·v per (batch, head): query [B, Lq, D], key [B, Lk, D],
    /// value [B, Lk, Dv] → [B, Lq, Dv]. `scale` defaults to (D/heads)^-½.
    /// `keyPaddingMask[b][j] == true` excludes key j of batch entry b (padded text tokens).
    public static func scaledDotProductAttention(query: Tensor, key: Tensor, value: Tensor, heads: Int,
                                                 scale: Float? = nil, keyPaddingMask: [[Bool]]? = nil) -> Tensor {
        let q = query, k = key, v = value
        precondition(q.rank == 3 && k.rank == 3 && v.rank == 3,
                     "attention needs [B, L, D] tensors, got query \(q.shape), key \(k.shape), value \(v.shape)")
        let batch = q.shape[0], lq = q.shape[1], d = q.shape[2], lk = k.shape[1], dv = v.shape[2]
        precondition(k.shape[0] == batch && v.shape[0] == batch && k.shape[2] == d && v.shape[1] == lk,
                     "attention: query \(q.shape), key \(k.shape), value \(v.shape) do not fit together")
        precondition(heads > 0 && d % heads == 0 && dv % heads == 0,
                     "attention: \(heads) heads do not divide query/key width \(d) and value width \(dv)")
        precondition(lk > 0, "attention: no keys (key shape \(k.shape))")
        var maskFlags: [Bool]? = nil
        if let keyPaddingMask {
            precondition(keyPaddingMask.count == batch && keyPaddingMask.allSatisfy { $0.count == lk },
                         "attention: keyPaddingMask must be \(batch) × \(lk), got \(keyPaddingMask.count) rows of \(keyPaddingMask.map(\.count))")
            for (b, row) in keyPaddingMask.enumerated() {
                precondition(row.contains(false), "attention: keyPaddingMask masks every key of batch entry \(b)")
            }
            maskFlags = keyPaddingMask.flatMap { $0 }
        }
        let dh = d / heads, dvh = dv / heads
        let alpha = scale ?? 1 / Float(dh).squareRoot()
        let geometry = AttentionKernel.Geometry(batch: batch, heads: heads, lq: lq, lk: lk, d: d, dv: dv,
                                                dh: dh, dvh: dvh, alpha: alpha)

        let out = Tensor(uninitialized: [batch, lq, dv])
        let recording = GradMode.isEnabled && (q.requiresGrad || k.requiresGrad || v.requiresGrad)
        var logSumExp = [Float](repeating: 0, count: recording ? batch * heads * lq : 0)
        let qp = q.pointer, kp = k.pointer, vp = v.pointer, op = out.pointer
        logSumExp.withUnsafeMutableBufferPointer { lse in
            AttentionKernel.forEachTask(geometry) { task, rowsInParallel in
                let b = task / heads, h = task % heads
                let block = geometry.queryBlock
                let scores = Tensor(uninitialized: [block, lk])
                let s = scores.pointer
                for start in stride(from: 0, to: lq, by: block) {
                    let rows = min(block, lq - start)
                    AttentionKernel.scores(geometry, q: qp, k: kp, b: b, h: h, rows: start..<start + rows,
                                           mask: maskFlags, into: s)
                    let lsePointer = recording ? lse.baseAddress! + task * lq + start : nil
                    AttentionKernel.rows(rows, parallel: rowsInParallel, width: lk) { i in
                        let l = Softmax.row(s + i * lk, s + i * lk, lk)
                        lsePointer?[i] = l
                    }
                    BLAS.sgemm(transposeA: false, transposeB: false, m: rows, n: dvh, k: lk,
                               a: s, lda: lk, b: vp + b * lk * dv + h * dvh, ldb: dv,
                               c: op + (b * lq + start) * dv + h * dvh, ldc: dv)
                }
            }
        }

        return out.recorded("attention", inputs: [q, k, v]) { [unowned out] g in
            AttentionKernel.backward(geometry, q: q, k: k, v: v, out: out, g: g, logSumExp: logSumExp, mask: maskFlags)
        }
    }
}

enum AttentionKernel {
    struct Geometry {
        let batch, heads, lq, lk, d, dv, dh, dvh: Int
        let alpha: Float

        /// Query rows per block, so the block's scores (rows × lk) stay within the budget.
        var queryBlock: Int { max(1, min(lq, AttentionKernel.scoreBlockFloats / max(lk, 1))) }
    }

    /// Floats of scores per query block (256 KiB: the block stays in L2 between the GEMMs and
    /// the softmax). Tests lower it to exercise several blocks on small inputs.
    static var scoreBlockFloats = 65_536

    /// Runs every (batch, head) task. With at least as many tasks as cores they run in parallel
    /// with single-threaded BLAS; otherwise serially, with BLAS threads and parallel softmax rows.
    static func forEachTask(_ g: Geometry, _ body: (Int, Bool) -> Void) {
        let tasks = g.batch * g.heads
        if tasks >= Parallel.threadCount && Parallel.threadCount > 1 {
            BLAS.singleThreaded { Parallel.forEach(tasks) { body($0, false) } }
        } else {
            for t in 0..<tasks { body(t, true) }
        }
    }

    /// Calls `body(i)` for i in 0..<count, split across cores when `parallel`.
    @inline(__always)
    static func rows(_ count: Int, parallel: Bool, width: Int, _ body: (Int) -> Void) {
        if parallel {
            Parallel.forRange(count, grain: max(1, 8192 / max(width, 1))) { r in for i in r { body(i) } }
        } else {
            for i in 0..<count { body(i) }
        }
    }

    /// S = alpha·Q_bh[rows]·K_bhᵀ into s [rows.count, lk]; masked keys get −∞.
    static func scores(_ g: Geometry, q: UnsafePointer<Float>, k: UnsafePointer<Float>, b: Int, h: Int,
                       rows: Range<Int>, mask: [Bool]?, into s: UnsafeMutablePointer<Float>) {
        BLAS.sgemm(transposeA: false, transposeB: true, m: rows.count, n: g.lk, k: g.dh, alpha: g.alpha,
                   a: q + (b * g.lq + rows.lowerBound) * g.d + h * g.dh, lda: g.d,
                   b: k + b * g.lk * g.d + h * g.dh, ldb: g.d, c: s, ldc: g.lk)
        guard let mask else { return }
        for j in 0..<g.lk where mask[b * g.lk + j] {
            for i in 0..<rows.count { s[i * g.lk + j] = -.infinity }
        }
    }

    /// With P recomputed as exp(S − lse) and dO the output gradient of this (batch, head):
    ///   dV = Pᵀ·dO,  dP = dO·Vᵀ,  dS = P ⊙ (dP − rowsum(dO ⊙ O)),
    ///   dQ = alpha·dS·K,  dK = alpha·dSᵀ·Q.
    /// Query blocks add their share into dV and dK (beta = 1 after the first block).
    static func backward(_ geo: Geometry, q: Tensor, k: Tensor, v: Tensor, out: Tensor, g: Tensor,
                         logSumExp: [Float], mask: [Bool]?) -> [Tensor?] {
        let needQK = q.requiresGrad || k.requiresGrad
        let dq = q.requiresGrad ? Tensor(uninitialized: q.shape) : nil
        let dk = k.requiresGrad ? Tensor(uninitialized: k.shape) : nil
        let dv = v.requiresGrad ? Tensor(uninitialized: v.shape) : nil
        let (lq, lk, d, dvw, dh, dvh, heads) = (geo.lq, geo.lk, geo.d, geo.dv, geo.dh, geo.dvh, geo.heads)
        let qp = q.pointer, kp = k.pointer, vp = v.pointer, op = out.pointer, gp = g.pointer
        let dqp = dq?.pointer, dkp = dk?.pointer, dvp = dv?.pointer
        logSumExp.withUnsafeBufferPointer { lse in
            forEachTask(geo) { task, rowsInParallel in
                let b = task / heads, h = task % heads
                let block = geo.queryBlock
                let probabilities = Tensor(uninitialized: [block, lk])
                let gradScores = needQK ? Tensor(uninitialized: [block, lk]) : nil
                let p = probabilities.pointer
                let vBH = vp + b * lk * dvw + h * dvh, kBH = kp + b * lk * d + h * dh
                for start in stride(from: 0, to: lq, by: block) {
                    let rows = min(block, lq - start), beta: Float = start == 0 ? 0 : 1
                    scores(geo, q: qp, k: kp, b: b, h: h, rows: start..<start + rows, mask: mask, into: p)
                    let lseRow = lse.baseAddress! + task * lq + start
                    AttentionKernel.rows(rows, parallel: rowsInParallel, width: lk) { i in
                        let l = Float8(repeating: lseRow[i])
                        Vectorized.map(lk, p + i * lk, p + i * lk) { s in FastMath.exp(s - l) }
                    }
                    let gOut = gp + (b * lq + start) * dvw + h * dvh
                    if let dvp {
                        BLAS.sgemm(transposeA: true, transposeB: false, m: lk, n: dvh, k: rows,
                                   a: p, lda: lk, b: gOut, ldb: dvw,
                                   beta: beta, c: dvp + b * lk * dvw + h * dvh, ldc: dvw)
                    }
                    guard let ds = gradScores?.pointer else { continue }
                    BLAS.sgemm(transposeA: false, transposeB: true, m: rows, n: lk, k: dvh,
                               a: gOut, lda: dvw, b: vBH, ldb: dvw, c: ds, ldc: lk)
                    let oBH = op + (b * lq + start) * dvw + h * dvh
                    AttentionKernel.rows(rows, parallel: rowsInParallel, width: lk) { i in
                        let rowDot = Float8(repeating: Float(Softmax.dot(gOut + i * dvw, oBH + i * dvw, dvh)))
                        Vectorized.map(lk, p + i * lk, ds + i * lk, ds + i * lk) { p, dp in p * (dp - rowDot) }
                    }
                    if let dqp {
                        BLAS.sgemm(transposeA: false, transposeB: false, m: rows, n: dh, k: lk, alpha: geo.alpha,
                                   a: ds, lda: lk, b: kBH, ldb: d, c: dqp + (b * lq + start) * d + h * dh, ldc: d)
                    }
                    if let dkp {
                        BLAS.sgemm(transposeA: true, transposeB: false, m: lk, n: dh, k: rows, alpha: geo.alpha,
                                   a: ds, lda: lk, b: qp + (b * lq + start) * d + h * dh, ldb: d,
                                   beta: beta, c: dkp + b * lk * d + h * dh, ldc: d)
                    }
                }
            }
        }
        return [dq, dk, dv]
    }
}
