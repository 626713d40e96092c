import XCTest
@testable import Models
import NN
import Tensor

/// The VQ layer's stop-gradient semantics: straight-through to z, the codebook trained by the
/// codebook term only (legacy form: loss = mean((sg z_q − z)²) + β·mean((z_q − sg z)²)).
final class VectorQuantizerTests: XCTestCase {
    func makeQuantizer() -> VectorQuantizer {
        var g = RandomGenerator(seed: 50)
        let vq = VectorQuantizer(codes: 6, dimension: 3, generator: &g)
        vq.embedding.weight.assign(randn([6, 3], seed: 51))  // spread codes so assignments are clear
        return vq
    }

    func testNearestCodeAndValues() {
        let vq = makeQuantizer()
        let z = randn([2, 3, 2, 2], seed: 52)
        let q = vq(z)
        let table = vq.embedding.weight
        for n in 0..<8 {
            let (b, pos) = (n / 4, n % 4)
            let vector = (0..<3).map { z.pointer[b * 12 + $0 * 4 + pos] }
            let distances = (0..<6).map { j in (0..<3).map { k in pow(vector[k] - table.pointer[j * 3 + k], 2) }.reduce(0, +) }
            XCTAssertEqual(q.indices[n], distances.indices.min { distances[$0] < distances[$1] }!)
            for k in 0..<3 {
                XCTAssertEqual(q.quantized.pointer[b * 12 + k * 4 + pos], table.pointer[q.indices[n] * 3 + k], accuracy: 1e-6)
            }
        }
    }

    func testStraightThroughGradientEqualsUpstream() {
        let vq = makeQuantizer()
        let z = randn([2, 3, 2, 2], seed: 53)
        z.requiresGrad = true
        let upstream = randn([2, 3, 2, 2], seed: 54)
        let q = vq(z)
        let grads = gradients(of: (q.quantized * upstream).sum(), wrt: [z, vq.embedding.weight])
        assertClose(try! XCTUnwrap(grads[0]), upstream, atol: 1e-6)
        // The straight-through path gives the codebook nothing.
        if let codebookGrad = grads[1] { XCTAssertEqual(codebookGrad.square().sum().item, 0) }
    }

    func testLossGradients() {
        let vq = makeQuantizer()
        let z = randn([2, 3, 2, 2], seed: 55)
        z.requiresGrad = true
        let q = vq(z)
        let grads = gradients(of: q.loss, wrt: [z, vq.embedding.weight])
        let count = Float(8 * 3)
        // dL/dz = 2 (z − z_q) / (N·D) from the commitment term only.
        let expectedZ = (z.detached() - q.quantized.detached()) * (2 / count)
        assertClose(try! XCTUnwrap(grads[0]), expectedZ, atol: 1e-6)
        // dL/de_k = β · 2 Σ_{i → k} (e_k − z_i) / (N·D) from the codebook term only.
        var expectedCodebook = [Float](repeating: 0, count: 18)
        for n in 0..<8 {
            let (b, pos, k) = (n / 4, n % 4, q.indices[n])
            for d in 0..<3 {
                expectedCodebook[k * 3 + d] += vq.beta * 2 / count
                    * (vq.embedding.weight.pointer[k * 3 + d] - z.pointer[b * 12 + d * 4 + pos])
            }
        }
        let codebookGrad = try! XCTUnwrap(grads[1])
        assertClose(codebookGrad, Tensor(shape: [6, 3], scalars: expectedCodebook), atol: 1e-6)
        XCTAssertGreaterThan(codebookGrad.abs().sum().item, 0)
    }

    func testLossValue() {
        let vq = makeQuantizer()
        let z = randn([1, 3, 2, 2], seed: 56)
        let q = withoutGrad { vq(z) }
        let mse = (q.quantized - z).square().mean().item
        XCTAssertEqual(q.loss.item, mse * (1 + vq.beta), accuracy: 1e-6)
    }
}
