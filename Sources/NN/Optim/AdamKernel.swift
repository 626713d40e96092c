import Foundation

/// The per-element Adam/AdamW update of torch.optim's single-tensor algorithm, written once
/// for any floating-point type: the trainer runs it in Float, the tests run the very same
/// code in Double and compare it bit for bit with torch in float64.
///
/// Operation order and fusion follow torch's CPU kernels exactly:
///   L2:     g = fma(wd, p, g)                                 grad.add(param, alpha=wd)
///   AdamW:  p = p · (1 − lr·wd)                               param.mul_(1 - lr*wd)
///   m:      lerp(m, g, 1 − β1), fused as torch's lerp        exp_avg.lerp_(grad, 1-β1)
///   v:      v = fma((1 − β2)·g, g, v·β2)                      exp_avg_sq.mul_(β2).addcmul_(g, g, 1-β2)
///   denom:  √v / √(1 − β2ᵗ) + eps                             (exp_avg_sq.sqrt() / bc2_sqrt).add_(eps)
///   p:      p + (−lr/(1 − β1ᵗ)) · m / denom                   param.addcdiv_(exp_avg, denom, value=-step_size)
/// Scalars are computed in Double as Python does, then rounded once to T as torch does for
/// a tensor of that dtype.
public struct AdamHyperparameters: Equatable, Codable, Sendable {
    public var learningRate: Double
    public var beta1: Double
    public var beta2: Double
    public var eps: Double
    public var weightDecay: Double
    /// AdamW: decay the weights directly instead of adding wd·p to the gradient.
    public var decoupledWeightDecay: Bool

    public init(learningRate: Double, beta1: Double, beta2: Double, eps: Double, weightDecay: Double,
                decoupledWeightDecay: Bool) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
        self.decoupledWeightDecay = decoupledWeightDecay
    }
}

public enum AdamKernel {
    /// Applies update number `step` (1-based, already incremented) to `count` elements.
    @inlinable
    public static func update<T: BinaryFloatingPoint>(
        parameter p: UnsafeMutablePointer<T>, gradient g: UnsafePointer<T>,
        expAvg m: UnsafeMutablePointer<T>, expAvgSq v: UnsafeMutablePointer<T>,
        count: Int, step: Int, hyper h: AdamHyperparameters
    ) {
        let stepValue = Double(step)
        let biasCorrection1 = 1 - Foundation.pow(h.beta1, stepValue)
        let biasCorrection2 = 1 - Foundation.pow(h.beta2, stepValue)
        let stepSize = h.learningRate / biasCorrection1
        let biasCorrection2Sqrt = Foundation.pow(biasCorrection2, 0.5)  // Python's `** 0.5`

        let l2 = h.weightDecay != 0 && !h.decoupledWeightDecay
        let decoupled = h.weightDecay != 0 && h.decoupledWeightDecay
        let weightDecay = T(h.weightDecay)
        let decayFactor = T(1 - h.learningRate * h.weightDecay)
        let lerpWeight = T(1 - h.beta1)
        let lerpSmallWeight = Swift.abs(lerpWeight) < T(0.5)
        let lerpComplement = T(1) - lerpWeight
        let beta2 = T(h.beta2)
        let oneMinusBeta2 = T(1 - h.beta2)
        let bc2Sqrt = T(biasCorrection2Sqrt)
        let eps = T(h.eps)
        let negStepSize = T(-stepSize)

        for i in 0..<count {
            var param = p[i]
            var grad = g[i]
            if l2 { grad = grad.addingProduct(weightDecay, param) }
            if decoupled { param = param * decayFactor }

            // torch's lerp: self + w·(end − self) for |w| < ½, else end − (end − self)·(1 − w), fused.
            let diff = grad - m[i]
            let avg = lerpSmallWeight ? m[i].addingProduct(lerpWeight, diff)
                                      : grad.addingProduct(-diff, lerpComplement)
            m[i] = avg

            let avgSq = (v[i] * beta2).addingProduct(oneMinusBeta2 * grad, grad)
            v[i] = avgSq

            let denom = avgSq.squareRoot() / bc2Sqrt + eps
            p[i] = param + (negStepSize * avg) / denom
        }
    }
}
