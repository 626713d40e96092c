/// Finite-difference verification of backward rules.
///
/// The scalar probed is L = Σ f(inputs) ⊙ R for a fixed random R, so every output element's
/// gradient path is exercised. Analytic gradients come from autograd; numeric ones from
/// central differences evaluated in Float32 and summed in Float64.
public enum GradientCheck {
    public struct Mismatch: CustomStringConvertible {
        public let input: Int, index: Int
        public let analytic: Double, numeric: Double
        public var description: String {
            "input \(input) element \(index): analytic \(analytic), numeric \(numeric)"
        }
    }

    public struct Report {
        public var mismatches: [Mismatch] = []
        public var maxAbsoluteError: Double = 0
        public var checkedElements = 0
        public var passed: Bool { mismatches.isEmpty }
    }

    /// Checks d/d inputs of `f`. At most `maxElementsPerInput` elements of each input are probed
    /// (chosen at random) to bound the cost on large tensors.
    public static func check(inputs: [Tensor], epsilon: Float = 1e-2, absoluteTolerance: Double = 1e-3,
                             relativeTolerance: Double = 1e-2, maxElementsPerInput: Int = 64,
                             seed: UInt64 = 1, _ f: ([Tensor]) -> Tensor) -> Report {
        var generator = RandomGenerator(seed: seed)
        for x in inputs { x.requiresGrad = true }
        let probeOutput = withoutGrad { f(inputs) }
        let projection = Tensor.randomNormal(probeOutput.shape, generator: &generator)

        func objective() -> Double {
            let y = withoutGrad { f(inputs) }
            var s: Double = 0
            for i in 0..<y.count { s += Double(y.pointer[i]) * Double(projection.pointer[i]) }
            return s
        }

        let y = f(inputs)
        let analytic = gradients(of: y, wrt: inputs, seed: projection)
        var report = Report()
        for (n, x) in inputs.enumerated() {
            let indices = x.count <= maxElementsPerInput
                ? Array(0..<x.count)
                : (0..<maxElementsPerInput).map { _ in generator.nextInt(below: x.count) }
            for i in indices {
                let saved = x.pointer[i]
                x.pointer[i] = saved + epsilon
                let plus = objective()
                x.pointer[i] = saved - epsilon
                let minus = objective()
                x.pointer[i] = saved
                let numeric = (plus - minus) / (2 * Double(epsilon))
                let a = analytic[n].map { Double($0.pointer[i]) } ?? 0
                let err = Swift.abs(a - numeric)
                // A NaN error must count as the worst error, not vanish from max/compare.
                report.maxAbsoluteError = err.isNaN ? .nan : max(report.maxAbsoluteError, err)
                report.checkedElements += 1
                // Written as "not within" so a non-finite analytic or numeric value fails.
                if !(a.isFinite && numeric.isFinite && err <= absoluteTolerance + relativeTolerance * Swift.abs(numeric)) {
                    report.mismatches.append(Mismatch(input: n, index: i, analytic: a, numeric: numeric))
                }
            }
        }
        return report
    }
}
