import XCTest
@testable import Tensor

final class ShapeAndReductionTests: XCTestCase {
    func testReductions() {
        let a = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(a.sum().item, 21)
        XCTAssertEqual(a.mean().item, 3.5)
        XCTAssertEqual(a.sum(alongAxis: 0).scalars, [5, 7, 9])
        XCTAssertEqual(a.sum(alongAxis: 1).scalars, [6, 15])
        XCTAssertEqual(a.sum(alongAxis: 1, keepingDimension: true).shape, [2, 1])
        XCTAssertEqual(a.mean(alongAxes: [0, 1]).scalars, [3.5])
    }

    func testReductionGradients() {
        let a = randn([3, 4, 5], seed: 1)
        assertGradientsMatch([a]) { $0[0].sum().reshaped([1]) }
        assertGradientsMatch([a]) { $0[0].mean().reshaped([1]) }
        assertGradientsMatch([a]) { $0[0].sum(alongAxes: [0, 2]) }
        assertGradientsMatch([a]) { $0[0].mean(alongAxis: 1, keepingDimension: true) }
    }

    func testPermuteMatchesIndexing() {
        let a = Tensor(shape: [2, 3, 4], scalars: (0..<24).map(Float.init))
        let p = a.permuted([2, 0, 1])
        XCTAssertEqual(p.shape, [4, 2, 3])
        for i in 0..<4 { for j in 0..<2 { for k in 0..<3 {
            XCTAssertEqual(p.pointer[(i * 2 + j) * 3 + k], a.pointer[(j * 3 + k) * 4 + i])
        } } }
    }

    func testShapeOpGradients() {
        let a = randn([2, 3, 4], seed: 2), b = randn([2, 2, 4], seed: 3)
        assertGradientsMatch([a]) { $0[0].permuted([1, 2, 0]) }
        assertGradientsMatch([a]) { $0[0].transposed(0, 2).reshaped([4, 6]) }
        assertGradientsMatch([a, b]) { Tensor.concatenate($0, alongAxis: 1) }
        assertGradientsMatch([a]) { $0[0].slice(alongAxis: 2, 1..<3) }
        assertGradientsMatch([a]) { xs in
            let parts = xs[0].split(sizes: [1, 2], alongAxis: 1)
            return parts[1] * 2 + parts[0]
        }
    }

    func testConcatAndSplitRoundTrip() {
        let a = randn([2, 3, 2], seed: 4), b = randn([2, 1, 2], seed: 5)
        let c = Tensor.concatenate([a, b], alongAxis: 1)
        let parts = c.split(sizes: [3, 1], alongAxis: 1)
        XCTAssertEqual(parts[0].scalars, a.scalars)
        XCTAssertEqual(parts[1].scalars, b.scalars)
    }
}
