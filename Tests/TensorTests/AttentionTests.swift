import XCTest
@testable import Tensor

final class AttentionTests: XCTestCase {
    /// Per (batch, head) loops in Double: softmax(q_h·k_hᵀ·scale)·v_h, heads merged by column.
    func naiveAttention(_ q: Tensor, _ k: Tensor, _ v: Tensor, heads: Int, scale: Double? = nil,
                        mask: [[Bool]]? = nil) -> Tensor {
        let b = q.shape[0], lq = q.shape[1], d = q.shape[2], lk = k.shape[1], dv = v.shape[2]
        let dh = d / heads, dvh = dv / heads, s = scale ?? 1 / Double(dh).squareRoot()
        let qs = q.scalars, ks = k.scalars, vs = v.scalars
        var out = [Float](repeating: 0, count: b * lq * dv)
        for bi in 0..<b { for h in 0..<heads { for i in 0..<lq {
            var logits = [Double](repeating: -.infinity, count: lk)
            for j in 0..<lk where !(mask?[bi][j] ?? false) {
                var dot = 0.0
                for c in 0..<dh { dot += Double(qs[(bi * lq + i) * d + h * dh + c]) * Double(ks[(bi * lk + j) * d + h * dh + c]) }
                logits[j] = dot * s
            }
            let m = logits.max()!
            let weights = logits.map { Foundation.exp($0 - m) }
            let total = weights.reduce(0, +)
            for c in 0..<dvh {
                var acc = 0.0
                for j in 0..<lk { acc += weights[j] / total * Double(vs[(bi * lk + j) * dv + h * dvh + c]) }
                out[(bi * lq + i) * dv + h * dvh + c] = Float(acc)
            }
        } } }
        return Tensor(shape: [b, lq, dv], scalars: out)
    }

    func testSelfAttentionMatchesNaive() {
        let x = randn([2, 5, 8], seed: 1)
        for heads in [1, 2, 4] {
            assertClose(Tensor.scaledDotProductAttention(query: x, key: x, value: x, heads: heads),
                        naiveAttention(x, x, x, heads: heads), atol: 1e-5)
        }
    }

    func testCrossAttentionWithDifferentLengthsAndWidths() {
        let q = randn([3, 4, 6], seed: 2), k = randn([3, 7, 6], seed: 3), v = randn([3, 7, 10], seed: 4)
        let y = Tensor.scaledDotProductAttention(query: q, key: k, value: v, heads: 2)
        XCTAssertEqual(y.shape, [3, 4, 10])
        assertClose(y, naiveAttention(q, k, v, heads: 2), atol: 1e-5)
        assertClose(Tensor.scaledDotProductAttention(query: q, key: k, value: v, heads: 2, scale: 0.3),
                    naiveAttention(q, k, v, heads: 2, scale: 0.3), atol: 1e-5)
    }

    func testSerialAndParallelTaskPathsAgree() {
        // One task (batch 1, one head) runs the serial path with threaded rows; many tasks run
        // in parallel. Both must equal the reference.
        let q = randn([1, 33, 16], seed: 5), k = randn([1, 21, 16], seed: 6), v = randn([1, 21, 12], seed: 7)
        assertClose(Tensor.scaledDotProductAttention(query: q, key: k, value: v, heads: 1),
                    naiveAttention(q, k, v, heads: 1), atol: 1e-5)
        assertClose(Tensor.scaledDotProductAttention(query: q, key: k, value: v, heads: 4),
                    naiveAttention(q, k, v, heads: 4), atol: 1e-5)
    }

    func testKeyPaddingMask() {
        let q = randn([2, 3, 4], seed: 8), k = randn([2, 5, 4], seed: 9), v = randn([2, 5, 6], seed: 10)
        let mask = [[false, false, true, false, true], [false, true, true, true, true]]
        let y = Tensor.scaledDotProductAttention(query: q, key: k, value: v, heads: 2, keyPaddingMask: mask)
        assertClose(y, naiveAttention(q, k, v, heads: 2, mask: mask), atol: 1e-5)
        // Masking equals dropping the keys: batch entry 1 sees only key 0.
        let kept = Tensor.scaledDotProductAttention(query: q.slice(alongAxis: 0, 1..<2), key: k.slice(alongAxis: 0, 1..<2).slice(alongAxis: 1, 0..<1),
                                                    value: v.slice(alongAxis: 0, 1..<2).slice(alongAxis: 1, 0..<1), heads: 2)
        assertClose(y.slice(alongAxis: 0, 1..<2), kept, atol: 1e-6)
    }

    func testAttentionGradients() {
        let q = randn([2, 3, 4], seed: 11), k = randn([2, 5, 4], seed: 12), v = randn([2, 5, 6], seed: 13)
        assertGradientsMatch([q, k, v]) { Tensor.scaledDotProductAttention(query: $0[0], key: $0[1], value: $0[2], heads: 2) }
        let mask = [[false, true, false, false, true], [true, false, false, false, false]]
        assertGradientsMatch([q, k, v]) {
            Tensor.scaledDotProductAttention(query: $0[0], key: $0[1], value: $0[2], heads: 2, scale: 0.7, keyPaddingMask: mask)
        }
        // Single task (serial path) and self-attention through one shared input.
        let x = randn([1, 4, 6], seed: 14)
        assertGradientsMatch([x]) { Tensor.scaledDotProductAttention(query: $0[0], key: $0[0], value: $0[0], heads: 1) }
    }

    func testMaskedKeysReceiveNoGradient() {
        let q = randn([1, 3, 4], seed: 15), k = randn([1, 4, 4], seed: 16), v = randn([1, 4, 4], seed: 17)
        k.requiresGrad = true; v.requiresGrad = true
        let y = Tensor.scaledDotProductAttention(query: q, key: k, value: v, heads: 2, keyPaddingMask: [[false, false, true, false]])
        let grads = gradients(of: y, wrt: [k, v], seed: randn(y.shape, seed: 18))
        for g in grads { for c in 0..<4 { XCTAssertEqual(g!.scalars[2 * 4 + c], 0) } }
    }

    func testQueryBlocksAgreeWithOneBlock() {
        // Force blocks of 2 query rows (5 rows → 3 blocks, the last partial), masks included.
        let saved = AttentionKernel.scoreBlockFloats
        AttentionKernel.scoreBlockFloats = 2 * 7
        defer { AttentionKernel.scoreBlockFloats = saved }
        let q = randn([2, 5, 4], seed: 22), k = randn([2, 7, 4], seed: 23), v = randn([2, 7, 6], seed: 24)
        let mask = [[false, true, false, false, false, false, true], [false, false, false, false, false, false, false]]
        assertClose(Tensor.scaledDotProductAttention(query: q, key: k, value: v, heads: 2, keyPaddingMask: mask),
                    naiveAttention(q, k, v, heads: 2, mask: mask), atol: 1e-5)
        assertGradientsMatch([q, k, v]) {
            Tensor.scaledDotProductAttention(query: $0[0], key: $0[1], value: $0[2], heads: 2, keyPaddingMask: mask)
        }
        let single = [randn([1, 5, 4], seed: 25), randn([1, 7, 4], seed: 26), randn([1, 7, 4], seed: 27)]
        assertGradientsMatch(single) { Tensor.scaledDotProductAttention(query: $0[0], key: $0[1], value: $0[2], heads: 1) }
    }

    func testGradientOnlyForValue() {
        let q = randn([2, 3, 4], seed: 19), k = randn([2, 3, 4], seed: 20), v = randn([2, 3, 4], seed: 21)
        assertGradientsMatch([v]) { Tensor.scaledDotProductAttention(query: q, key: k, value: $0[0], heads: 2) }
    }
}
