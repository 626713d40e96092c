import CKernels
import Foundation

extension AdamKernel {
    /// The Float update of `update` on the C kernel (AVX2+FMA where the CPU has it, portable
    /// C otherwise): the same operations in the same order, so bit-identical to `update` in
    /// Float (AdamTests holds both to that), several times faster on large tensors.
    /// `isa` forces a variant (CKernels' LDM_ISA_*), for the tests.
    ///
    /// The gradient is multiplied by `gradientScale` first (clipping), and with a `shadow` the
    /// EMA's update by `averagingWeight` follows in the same pass: bit-identical to scaling
    /// the gradient in place, stepping, then `ExponentialMovingAverage.update`.
    public static func updateVectorized(parameter p: UnsafeMutablePointer<Float>, gradient g: UnsafePointer<Float>,
                                        expAvg m: UnsafeMutablePointer<Float>, expAvgSq v: UnsafeMutablePointer<Float>,
                                        shadow: UnsafeMutablePointer<Float>? = nil,
                                        count: Int, step: Int, hyper h: AdamHyperparameters,
                                        gradientScale: Float = 1, averagingWeight: Float = 0,
                                        isa: Int32 = Int32(LDM_ISA_AUTO)) {
        var c = constants(step: step, hyper: h)
        ldm_adam_ema_update_f32(p, g, m, v, shadow, Int64(count), &c, gradientScale, averagingWeight, isa)
    }

    /// The scalars `update` derives for one step, rounded to Float the same way.
    static func constants(step: Int, hyper h: AdamHyperparameters) -> ldm_adam_constants {
        let stepValue = Double(step)
        let biasCorrection1 = 1 - Foundation.pow(h.beta1, stepValue)
        let biasCorrection2 = 1 - Foundation.pow(h.beta2, stepValue)
        let lerpWeight = Float(1 - h.beta1)
        return ldm_adam_constants(
            weight_decay: Float(h.weightDecay),
            decay_factor: Float(1 - h.learningRate * h.weightDecay),
            lerp_weight: lerpWeight,
            lerp_complement: 1 - lerpWeight,
            beta2: Float(h.beta2),
            one_minus_beta2: Float(1 - h.beta2),
            bc2_sqrt: Float(Foundation.pow(biasCorrection2, 0.5)),
            eps: Float(h.eps),
            neg_step_size: Float(-(h.learningRate / biasCorrection1)),
            l2: h.weightDecay != 0 && !h.decoupledWeightDecay ? 1 : 0,
            decoupled: h.weightDecay != 0 && h.decoupledWeightDecay ? 1 : 0,
            lerp_small_weight: Swift.abs(lerpWeight) < 0.5 ? 1 : 0)
    }
}
