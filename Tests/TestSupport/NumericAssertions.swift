import Tensor
import XCTest

// Assertions shared by every numeric test target.

/// Asserts that autograd agrees with finite differences for `f` at `inputs`.
public func assertGradientsMatch(_ inputs: [Tensor], epsilon: Float = 1e-2, atol: Double = 1e-3, rtol: Double = 1e-2,
                                 maxElements: Int = 64, file: StaticString = #filePath, line: UInt = #line,
                                 _ f: @escaping ([Tensor]) -> Tensor) {
    let report = GradientCheck.check(inputs: inputs, epsilon: epsilon, absoluteTolerance: atol,
                                     relativeTolerance: rtol, maxElementsPerInput: maxElements, f)
    XCTAssertGreaterThan(report.checkedElements, 0, file: file, line: line)
    XCTAssertTrue(report.passed, "gradient mismatches: \(report.mismatches.prefix(5))", file: file, line: line)
}

/// A deterministic N(0, scale²) tensor.
public func randn(_ shape: [Int], seed: UInt64 = 0, scale: Float = 1) -> Tensor {
    var g = RandomGenerator(seed: seed)
    return Tensor.randomNormal(shape, std: scale, generator: &g)
}

/// Asserts |a − b| ≤ atol + rtol·|b| element-wise, reporting the worst element.
public func assertClose(_ a: Tensor, _ b: Tensor, atol: Float = 1e-5, rtol: Float = 1e-5,
                        file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.shape, b.shape, file: file, line: line)
    guard a.shape == b.shape else { return }
    var worst: Float = 0, at = 0
    for i in 0..<a.count {
        let err = abs(a.pointer[i] - b.pointer[i]) - rtol * abs(b.pointer[i])
        if err > worst { worst = err; at = i }
    }
    XCTAssertLessThanOrEqual(worst, atol, "element \(at): \(a.pointer[at]) vs \(b.pointer[at])", file: file, line: line)
}
