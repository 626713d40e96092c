import XCTest
@testable import Tensor

final class DropoutEmbeddingTests: XCTestCase {
    func testDropoutZeroesAboutPAndScalesTheRest() {
        var g = RandomGenerator(seed: 1)
        let x = Tensor(repeating: 2, shape: [100, 100])
        let y = x.dropout(probability: 0.3, generator: &g, training: true)
        let values = y.scalars
        let zeros = values.filter { $0 == 0 }.count
        XCTAssertEqual(Double(zeros) / 10_000, 0.3, accuracy: 0.02)
        XCTAssertTrue(values.allSatisfy { $0 == 0 || abs($0 - 2 / 0.7) < 1e-6 })
        // The expectation is preserved (inverted dropout).
        XCTAssertEqual(Double(y.mean().item), 2, accuracy: 0.05)
    }

    func testDropoutIsIdentityInEvaluationOrAtZero() {
        var g = RandomGenerator(seed: 2)
        let x = randn([5, 5], seed: 3)
        XCTAssertTrue(x.dropout(probability: 0.5, generator: &g, training: false) === x)
        XCTAssertTrue(x.dropout(probability: 0, generator: &g, training: true) === x)
        XCTAssertEqual(x.dropout(probability: 1, generator: &g, training: true).scalars, [Float](repeating: 0, count: 25))
    }

    func testDropoutGradientUsesTheSameMask() {
        var g = RandomGenerator(seed: 4)
        let x = randn([6, 7], seed: 5)
        x.requiresGrad = true
        let y = x.dropout(probability: 0.4, generator: &g, training: true)
        let seed = randn([6, 7], seed: 6)
        let dx = gradients(of: y, wrt: [x], seed: seed)[0]!
        // y = x·m, so dx = seed·m with m = y/x.
        for i in 0..<42 {
            let m = y.scalars[i] / x.scalars[i]
            XCTAssertEqual(dx.scalars[i], seed.scalars[i] * m, accuracy: 1e-5)
        }
        // Same seed, same mask: the finite-difference check reuses one generator state.
        let state = g
        assertGradientsMatch([x]) { xs in
            var local = state
            return xs[0].dropout(probability: 0.4, generator: &local, training: true)
        }
    }

    func testEmbeddingLooksUpRowsAndScatterAdds() {
        let table = randn([5, 3], seed: 7)
        let indices = [4, 0, 4, 2]
        let y = Tensor.embedding(table: table, indices: indices)
        XCTAssertEqual(y.shape, [4, 3])
        let ts = table.scalars, ys = y.scalars
        for (i, index) in indices.enumerated() { XCTAssertEqual(Array(ys[i * 3..<i * 3 + 3]), Array(ts[index * 3..<index * 3 + 3])) }
        assertGradientsMatch([table]) { Tensor.embedding(table: $0[0], indices: indices) }
        table.requiresGrad = true
        let grad = gradients(of: Tensor.embedding(table: table, indices: indices), wrt: [table],
                             seed: Tensor(repeating: 1, shape: [4, 3]))[0]!
        XCTAssertEqual(grad.scalars, [1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 2, 2, 2])
    }

    func testExpandedBroadcastsAndReducesGradients() {
        let x = randn([3, 1, 2], seed: 8)
        let y = x.expanded(to: [2, 3, 4, 2])
        assertClose(y, x + Tensor(zeros: [2, 3, 4, 2]), atol: 0)
        assertGradientsMatch([x]) { $0[0].expanded(to: [2, 3, 4, 2]) }
        let column = randn([4, 1], seed: 9)
        assertClose(column.expanded(to: [4, 5]), column * Tensor(repeating: 1, shape: [4, 5]), atol: 0)
        XCTAssertTrue(x.expanded(to: [3, 1, 2]) === x)
    }
}
