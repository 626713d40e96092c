import XCTest
@testable import Tensor

final class ElementwiseTests: XCTestCase {
    func testBroadcastShapes() {
        XCTAssertEqual(Broadcast.shape([2, 3, 4], [3, 1]), [2, 3, 4])
        XCTAssertEqual(Broadcast.shape([1], [5, 2]), [5, 2])
        XCTAssertEqual(Broadcast.shape([4, 1, 3], [1, 2, 1]), [4, 2, 3])
    }

    func testBroadcastValues() {
        let a = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        let b = Tensor(shape: [2, 1], scalars: [10, 20])
        XCTAssertEqual((a + b).scalars, [11, 12, 13, 24, 25, 26])
        let c = Tensor(shape: [3], scalars: [1, 0, -1])
        XCTAssertEqual((a * c).scalars, [1, 0, -3, 4, 0, -6])
        let d = Tensor(shape: [2, 1, 3], scalars: [1, 2, 3, 4, 5, 6])
        let e = Tensor(shape: [1, 2, 1], scalars: [100, 200])
        XCTAssertEqual((d + e).shape, [2, 2, 3])
        XCTAssertEqual((d + e).scalars, [101, 102, 103, 201, 202, 203, 104, 105, 106, 204, 205, 206])
    }

    /// The plane loop for an operand constant over a trailing block ([N, C, 1, 1] on [N, C, H, W])
    /// gives exactly what NumPy-style indexing gives, in both operand orders; shapes that only
    /// look alike ([1, C, 1, 1], fewer dimensions) take the general path and agree as well.
    func testBroadcastOverATrailingBlockMatchesIndexing() {
        let cases: [([Int], [Int], Int?)] = [
            ([2, 3, 4, 5], [2, 3, 1, 1], 20), ([2, 3, 4, 5], [2, 1, 1, 1], 60), ([2, 3, 1, 5], [2, 3, 1, 1], 5),
            ([2, 3, 4, 5], [2, 3, 4, 1], 5), ([1, 3, 4, 5], [1, 3, 1, 1], 20),
            ([2, 3, 4, 5], [1, 3, 1, 1], nil), ([2, 3, 4, 5], [3, 1, 1], nil), ([2, 3, 4, 5], [2, 1, 4, 1], nil),
        ]
        for (full, small, block) in cases {
            XCTAssertEqual(Broadcast.constantBlock(of: small, in: full), block, "\(small) in \(full)")
            let a = randn(full, seed: 7), b = randn(small, seed: 8).map { $0 + 3 }
            let strides = Broadcast.strides(of: small, in: full)
            func expected(_ f: (Float, Float) -> Float, smallFirst: Bool) -> [Float] {
                (0..<a.count).map { i in
                    var rem = i, j = 0
                    for d in stride(from: full.count - 1, through: 0, by: -1) {
                        j += (rem % full[d]) * strides[d]
                        rem /= full[d]
                    }
                    return smallFirst ? f(b.scalars[j], a.scalars[i]) : f(a.scalars[i], b.scalars[j])
                }
            }
            XCTAssertEqual((a + b).scalars, expected(+, smallFirst: false), "\(full) + \(small)")
            XCTAssertEqual((a / b).scalars, expected(/, smallFirst: false), "\(full) / \(small)")
            XCTAssertEqual((b - a).scalars, expected(-, smallFirst: true), "\(small) - \(full)")
            XCTAssertEqual((b * a).scalars, expected(*, smallFirst: true), "\(small) * \(full)")
        }
        let a = randn([2, 3, 4, 4], seed: 9), e = randn([2, 3, 1, 1], seed: 10)
        assertGradientsMatch([a, e]) { $0[0] + $0[1] }
        assertGradientsMatch([e, a]) { $0[0] * $0[1] }
    }

    func testBinaryGradients() {
        let a = randn([2, 3, 4], seed: 1), b = randn([3, 1], seed: 2)
        assertGradientsMatch([a, b]) { $0[0] + $0[1] }
        assertGradientsMatch([a, b]) { $0[0] - $0[1] }
        assertGradientsMatch([a, b]) { $0[0] * $0[1] }
        let positive = randn([3, 1], seed: 3).map { abs($0) + 1 }
        assertGradientsMatch([a, positive]) { $0[0] / $0[1] }
        let s = randn([1], seed: 4)
        assertGradientsMatch([s, positive]) { $0[0] / $0[1] }
    }

    func testScalarAndUnaryGradients() {
        let a = randn([3, 5], seed: 5)
        let positive = a.map { abs($0) + 0.5 }
        assertGradientsMatch([a]) { -$0[0] * 3 + 2 }
        assertGradientsMatch([a]) { 1 - $0[0] / 4 }
        assertGradientsMatch([a]) { ($0[0] * 0.5).exp() }
        assertGradientsMatch([positive]) { $0[0].log() }
        assertGradientsMatch([positive]) { $0[0].sqrt() }
        assertGradientsMatch([positive]) { $0[0].pow(1.5) }
        assertGradientsMatch([positive]) { $0[0].reciprocal() }
        assertGradientsMatch([a]) { $0[0].square() }
        // Keep probes away from the kinks.
        let awayFromZero = a.map { $0 >= 0 ? $0 + 0.1 : $0 - 0.1 }
        assertGradientsMatch([awayFromZero]) { $0[0].abs() }
        let awayFromBounds = a.map { abs(abs($0) - 0.5) < 0.05 ? $0 + 0.1 : $0 }
        assertGradientsMatch([awayFromBounds]) { $0[0].clamped(min: -0.5, max: 0.5) }
    }

    func testGradientCheckDetectsAWrongRule() {
        // A deliberately wrong backward rule must be caught: the checker itself can fail.
        let a = randn([4], seed: 6)
        let report = GradientCheck.check(inputs: [a]) { xs in
            let x = xs[0]
            return x.map { $0 * $0 }.recorded("bad_square", inputs: [x]) { g in [g] }
        }
        XCTAssertFalse(report.passed)
    }

    func testGradientCheckFailsOnANaNGradient() {
        // A backward rule that yields NaN must fail, though NaN compares false with any bound.
        let a = randn([4], seed: 7)
        let report = GradientCheck.check(inputs: [a]) { xs in
            let x = xs[0]
            return x.map { $0 * $0 }.recorded("nan_square", inputs: [x]) { g in [g.map { _ in .nan }] }
        }
        XCTAssertFalse(report.passed)
        XCTAssertEqual(report.mismatches.count, 4)
        XCTAssertTrue(report.maxAbsoluteError.isNaN)
    }

    func testGradientCheckFailsOnANaNForwardPass() {
        let a = randn([3], seed: 8)
        let report = GradientCheck.check(inputs: [a]) { xs in xs[0] * Float.nan }
        XCTAssertFalse(report.passed)
    }
}

final class NumericAssertionTests: XCTestCase {
    func testClosenessFailsOnNaNAndInfinityOnEitherSide() {
        let finite = Tensor(shape: [3], scalars: [1, 2, 3])
        XCTAssertNil(closenessFailure(finite, finite))
        for bad: Float in [.nan, .infinity, -.infinity] {
            let broken = Tensor(shape: [3], scalars: [1, bad, 3])
            XCTAssertNotNil(closenessFailure(broken, finite), "\(bad) as actual")
            XCTAssertNotNil(closenessFailure(finite, broken), "\(bad) as expected")
        }
        let allNaN = Tensor(repeating: .nan, shape: [3])
        XCTAssertNotNil(closenessFailure(allNaN, allNaN))
    }

    func testClosenessSeesADifferenceBeyondTolerance() {
        let a = Tensor(shape: [2], scalars: [1, 2]), b = Tensor(shape: [2], scalars: [1, 2.01])
        XCTAssertNotNil(closenessFailure(a, b, atol: 1e-3, rtol: 0))
        XCTAssertNil(closenessFailure(a, b, atol: 2e-2, rtol: 0))
        XCTAssertNotNil(closenessFailure(a, Tensor(shape: [1, 2], scalars: [1, 2])))
    }
}
