import XCTest
import Tensor
@testable import NN

final class LinearConvTests: XCTestCase {
    /// Sample mean and variance against U(±1/√fan_in): mean 0, variance 1/(3·fan_in).
    private func assertKaimingUniform(_ t: Tensor, fanIn: Int, file: StaticString = #filePath, line: UInt = #line) {
        let bound = 1 / Float(fanIn).squareRoot()
        XCTAssertLessThanOrEqual(t.maxValue(), bound, file: file, line: line)
        XCTAssertGreaterThanOrEqual(t.minValue(), -bound, file: file, line: line)
        XCTAssertGreaterThan(t.maxValue(), 0.99 * bound, "samples should reach the bound", file: file, line: line)
        let n = Double(t.count)
        let mean = t.sumAsDouble() / n
        let variance = t.scalars.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / n
        let expected = 1 / (3 * Double(fanIn))
        XCTAssertEqual(mean, 0, accuracy: 4 * (expected / n).squareRoot(), file: file, line: line)
        XCTAssertEqual(variance, expected, accuracy: 0.03 * expected, file: file, line: line)
    }

    func testLinearInitialisationMatchesTorchFormula() {
        var g = RandomGenerator(seed: 7)
        let l = Linear(64, 512, generator: &g)
        XCTAssertEqual(l.weight.shape, [512, 64])
        assertKaimingUniform(l.weight, fanIn: 64)
        XCTAssertLessThanOrEqual(l.bias!.maxValue(), 1 / 8)
        XCTAssertGreaterThanOrEqual(l.bias!.minValue(), -1 / 8)
    }

    func testConv2dInitialisationMatchesTorchFormula() {
        var g = RandomGenerator(seed: 8)
        let c = Conv2d(16, 64, kernelSize: 3, padding: 1, generator: &g)
        XCTAssertEqual(c.weight.shape, [64, 16, 3, 3])
        assertKaimingUniform(c.weight, fanIn: 144)
        let bound = 1 / Float(144).squareRoot()
        XCTAssertLessThanOrEqual(c.bias!.maxValue(), bound)
        XCTAssertGreaterThanOrEqual(c.bias!.minValue(), -bound)
    }

    func testInitialisationIsDrivenByTheGenerator() {
        var g1 = RandomGenerator(seed: 9), g2 = RandomGenerator(seed: 9), g3 = RandomGenerator(seed: 10)
        XCTAssertEqual(Linear(4, 4, generator: &g1).weight.scalars, Linear(4, 4, generator: &g2).weight.scalars)
        XCTAssertNotEqual(Linear(4, 4, generator: &g1).weight.scalars, Linear(4, 4, generator: &g3).weight.scalars)
    }

    func testLinearForwardMatchesDefinition() {
        var g = RandomGenerator(seed: 11)
        let l = Linear(3, 2, generator: &g)
        let x = randn([2, 2, 3], seed: 12)
        let y = l(x)
        XCTAssertEqual(y.shape, [2, 2, 2])
        for r in 0..<4 {
            for o in 0..<2 {
                var s = l.bias!.pointer[o]
                for i in 0..<3 { s += x.pointer[r * 3 + i] * l.weight.pointer[o * 3 + i] }
                XCTAssertEqual(y.pointer[r * 2 + o], s, accuracy: 1e-5)
            }
        }
    }

    func testLinearGradients() {
        var g = RandomGenerator(seed: 13)
        let l = Linear(5, 4, generator: &g)
        assertGradientsMatch([randn([3, 5], seed: 14), l.weight, l.bias!]) { xs in
            xs[0].matmul(xs[1], transposeOther: true) + xs[2]
        }
        // Through the layer itself, with respect to its parameters and the input.
        let x = randn([2, 3, 5], seed: 15)
        assertGradientsMatch([x, l.weight, l.bias!]) { _ in l(x) }
    }

    func testConv2dGradients() {
        var g = RandomGenerator(seed: 16)
        let c = Conv2d(2, 3, kernelSize: 3, stride: 2, padding: 1, generator: &g)
        let x = randn([2, 2, 5, 5], seed: 17)
        XCTAssertEqual(c(x).shape, [2, 3, 3, 3])
        assertGradientsMatch([x, c.weight, c.bias!]) { _ in c(x) }
    }
}
