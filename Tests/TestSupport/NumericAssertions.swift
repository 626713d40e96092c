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

/// Why `a` is not within atol + rtol·|b| of `b` element-wise (the worst element), or nil
/// when it is. A non-finite value on either side is a failure (NaN compares false, so a
/// plain `err > worst` scan would let an all-NaN output pass).
public func closenessFailure(_ a: Tensor, _ b: Tensor, atol: Float = 1e-5, rtol: Float = 1e-5) -> String? {
    guard a.shape == b.shape else { return "shapes differ: \(a.shape) vs \(b.shape)" }
    var worst: Float = 0, at = 0
    for i in 0..<a.count {
        let x = a.pointer[i], y = b.pointer[i]
        guard x.isFinite && y.isFinite else { return "element \(i) is not finite: \(x) vs \(y)" }
        let err = abs(x - y) - rtol * abs(y)
        if err > worst { worst = err; at = i }
    }
    return worst <= atol ? nil : "element \(at): \(a.pointer[at]) vs \(b.pointer[at]) (excess \(worst) over atol \(atol))"
}

/// Asserts |a − b| ≤ atol + rtol·|b| element-wise, reporting the worst element; fails on
/// any non-finite value.
public func assertClose(_ a: Tensor, _ b: Tensor, atol: Float = 1e-5, rtol: Float = 1e-5,
                        file: StaticString = #filePath, line: UInt = #line) {
    if let failure = closenessFailure(a, b, atol: atol, rtol: rtol) { XCTFail(failure, file: file, line: line) }
}
