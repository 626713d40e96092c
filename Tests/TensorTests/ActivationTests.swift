import XCTest
@testable import Tensor

final class ActivationTests: XCTestCase {
    /// Values across the interesting ranges, including saturation and a length that is not a
    /// multiple of the SIMD width.
    let sample: Tensor = {
        var values: [Float] = stride(from: -30, through: 30, by: 0.37).map { Float($0) }
        values += [0, 19.9, 20, 20.1, -90, 90, -1e-4, 1e-4, Float.leastNormalMagnitude / 4]
        return Tensor(shape: [values.count], scalars: values)
    }()

    /// Compares `op(x)` with a Double reference per element, within atol + rtol·|ref|.
    func check(_ op: (Tensor) -> Tensor, _ reference: (Double) -> Double, atol: Double = 1e-6, rtol: Double = 2e-6,
               file: StaticString = #filePath, line: UInt = #line) {
        let xs = sample.scalars, ys = op(sample).scalars
        for (x, y) in zip(xs, ys) {
            let r = reference(Double(x))
            XCTAssertLessThanOrEqual(abs(Double(y) - r), atol + rtol * abs(r), "at x = \(x): \(y) vs \(r)",
                                     file: file, line: line)
        }
    }

    func testPointwiseValuesMatchDoubleReferences() {
        check({ $0.sigmoid() }, { 1 / (1 + Foundation.exp(-$0)) })
        check({ $0.silu() }, { $0 / (1 + Foundation.exp(-$0)) })
        check({ $0.relu() }, { max($0, 0) }, atol: 0, rtol: 0)
        check({ $0.leakyReLU() }, { $0 > 0 ? $0 : 0.01 * $0 })
        check({ $0.leakyReLU(slope: 0.2) }, { $0 > 0 ? $0 : 0.2 * $0 })
        check({ $0.gelu() }, { 0.5 * $0 * (1 + Foundation.erf($0 / 2.0.squareRoot())) }, atol: 3e-6)
        check({ $0.gelu(approximateTanh: true) },
              { 0.5 * $0 * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * ($0 + 0.044715 * $0 * $0 * $0))) },
              atol: 3e-6)
        check({ $0.softplus() }, { $0 > 20 ? $0 : Foundation.log1p(Foundation.exp($0)) })
    }

    func testExpMatchesLibmAcrossTheFloatRange() {
        // The SIMD exp underlies every kernel here: within 2 ulp (relative 2.4e-7) everywhere.
        var worst = 0.0
        for x in stride(from: Float(-87), through: 88, by: 0.013) {
            let e = Double(FastMath.exp(x)), r = Foundation.exp(Double(x))
            worst = max(worst, abs(e - r) / r)
        }
        XCTAssertLessThan(worst, 2.4e-7)
        XCTAssertEqual(FastMath.exp(-100), 0)
        XCTAssertEqual(FastMath.exp(-Float.infinity), 0)
        XCTAssertEqual(FastMath.exp(0), 1)
    }

    func testPointwiseGradients() {
        let x = randn([3, 7], seed: 1, scale: 2)
        assertGradientsMatch([x]) { $0[0].sigmoid() }
        assertGradientsMatch([x]) { $0[0].silu() }
        assertGradientsMatch([x]) { $0[0].gelu() }
        assertGradientsMatch([x]) { $0[0].gelu(approximateTanh: true) }
        assertGradientsMatch([x]) { $0[0].softplus() }
        // Keep kinks away from the finite-difference stencil.
        let away = x.map { abs($0) < 0.05 ? $0 + 0.1 : $0 }
        assertGradientsMatch([away]) { $0[0].relu() }
        assertGradientsMatch([away]) { $0[0].leakyReLU(slope: 0.1) }
        let large = Tensor(shape: [4], scalars: [25, -25, 21, 30])
        assertGradientsMatch([large]) { $0[0].softplus() }
    }

    func testGEGLUSplitsHiddenThenGate() {
        let x = randn([2, 3, 10], seed: 2, scale: 1.5)
        let y = x.geglu()
        XCTAssertEqual(y.shape, [2, 3, 5])
        let xs = x.scalars
        var expected = [Float](repeating: 0, count: 30)
        for row in 0..<6 { for j in 0..<5 {
            let h = Double(xs[row * 10 + j]), gate = Double(xs[row * 10 + 5 + j])
            expected[row * 5 + j] = Float(h * 0.5 * gate * (1 + Foundation.erf(gate / 2.0.squareRoot())))
        } }
        assertClose(y, Tensor(shape: [2, 3, 5], scalars: expected), atol: 1e-5)
        let chunks = x.chunked(2, alongAxis: -1)
        assertClose(y, chunks[0] * chunks[1].gelu(), atol: 1e-6)
        assertGradientsMatch([x]) { $0[0].geglu() }
        assertGradientsMatch([randn([2, 22], seed: 3)]) { $0[0].geglu() }
    }

    // MARK: softmax

    func naiveSoftmax(_ x: Tensor, log: Bool) -> Tensor {
        let n = x.shape.last!, xs = x.scalars
        var out = [Float](repeating: 0, count: x.count)
        for r in 0..<(x.count / n) {
            let row = (0..<n).map { Double(xs[r * n + $0]) }
            let m = row.max()!
            let lse = m + Foundation.log(row.map { Foundation.exp($0 - m) }.reduce(0, +))
            for j in 0..<n { out[r * n + j] = Float(log ? row[j] - lse : Foundation.exp(row[j] - lse)) }
        }
        return Tensor(shape: x.shape, scalars: out)
    }

    func testSoftmaxMatchesNaiveAndIsStable() {
        let x = randn([4, 19], seed: 4, scale: 3)
        assertClose(x.softmax(), naiveSoftmax(x, log: false), atol: 1e-6)
        assertClose(x.logSoftmax(alongAxis: -1), naiveSoftmax(x, log: true), atol: 2e-5)
        // Huge logits would overflow exp without the max shift.
        let big = x * 500
        XCTAssertFalse(big.softmax().hasNonFinite)
        assertClose(big.softmax(), naiveSoftmax(big, log: false), atol: 1e-6)
        assertClose(big.logSoftmax(alongAxis: -1), naiveSoftmax(big, log: true), atol: 1e-3, rtol: 1e-6)
        let rowSums = x.softmax().sum(alongAxis: -1)
        assertClose(rowSums, Tensor(repeating: 1, shape: [4]), atol: 1e-6)
    }

    func testSoftmaxAlongOtherAxes() {
        let x = randn([3, 5, 4], seed: 5)
        let viaLast = x.transposed(0, 2).softmax().transposed(0, 2)
        assertClose(x.softmax(alongAxis: 0), viaLast, atol: 1e-6)
        assertClose(x.logSoftmax(alongAxis: 1), naiveSoftmax(x.transposed(1, 2), log: true).transposed(1, 2), atol: 1e-5)
    }

    func testSoftmaxGradients() {
        let x = randn([3, 6], seed: 6, scale: 2)
        assertGradientsMatch([x]) { $0[0].softmax() }
        assertGradientsMatch([x]) { $0[0].logSoftmax(alongAxis: -1) }
        let y = randn([4, 3, 2], seed: 7)
        assertGradientsMatch([y]) { $0[0].softmax(alongAxis: 1) }
        assertGradientsMatch([y]) { $0[0].logSoftmax(alongAxis: 0) }
    }
}
