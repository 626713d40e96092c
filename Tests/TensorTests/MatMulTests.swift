import XCTest
@testable import Tensor

final class MatMulTests: XCTestCase {
    func naive(_ a: Tensor, _ b: Tensor) -> Tensor {
        let m = a.shape[0], k = a.shape[1], n = b.shape[1]
        var out = [Float](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n {
            var s: Float = 0
            for p in 0..<k { s += a.pointer[i * k + p] * b.pointer[p * n + j] }
            out[i * n + j] = s
        } }
        return Tensor(shape: [m, n], scalars: out)
    }

    func testMatchesNaiveProduct() {
        let a = randn([5, 7], seed: 1), b = randn([7, 3], seed: 2)
        assertClose(a.matmul(b), naive(a, b), atol: 1e-5)
        assertClose(a.transposed().matmul(b, transposeSelf: true), naive(a, b), atol: 1e-5)
        assertClose(a.matmul(b.transposed(), transposeOther: true), naive(a, b), atol: 1e-5)
    }

    func testMatmulGradientsAllTranspositions() {
        for ta in [false, true] { for tb in [false, true] {
            let a = randn(ta ? [4, 3] : [3, 4], seed: 3), b = randn(tb ? [5, 4] : [4, 5], seed: 4)
            assertGradientsMatch([a, b]) { $0[0].matmul($0[1], transposeSelf: ta, transposeOther: tb) }
        } }
    }

    func testBatchedMatmulGradients() {
        for ta in [false, true] { for tb in [false, true] {
            let a = randn(ta ? [2, 4, 3] : [2, 3, 4], seed: 5), b = randn(tb ? [2, 5, 4] : [2, 4, 5], seed: 6)
            assertGradientsMatch([a, b]) { $0[0].matmul($0[1], transposeSelf: ta, transposeOther: tb) }
            let shared = randn(tb ? [5, 4] : [4, 5], seed: 7)
            assertGradientsMatch([a, shared]) { $0[0].matmul($0[1], transposeSelf: ta, transposeOther: tb) }
        } }
    }
}
