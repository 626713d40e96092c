import CKernels
import XCTest
import Tensor
@testable import NN

/// The C Adam/AdamW kernel (every ISA variant) against the generic Swift kernel in Float:
/// bit for bit, on odd lengths (vector body plus scalar tail), several steps, every branch.
final class AdamKernelVectorizedTests: XCTestCase {
    func testEveryVariantIsBitIdenticalToTheGenericKernel() {
        let configs: [(String, AdamHyperparameters)] = [
            ("adam", AdamHyperparameters(learningRate: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0,
                                         decoupledWeightDecay: false)),
            ("adam_l2", AdamHyperparameters(learningRate: 3e-3, beta1: 0.5, beta2: 0.9, eps: 1e-6, weightDecay: 0.1,
                                            decoupledWeightDecay: false)),
            ("adamw", AdamHyperparameters(learningRate: 1e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01,
                                          decoupledWeightDecay: true)),
            // 1 − β1 ≥ ½ takes torch's other lerp form.
            ("adamw_low_beta1", AdamHyperparameters(learningRate: 2e-2, beta1: 0.3, beta2: 0.99, eps: 1e-8, weightDecay: 0.05,
                                                    decoupledWeightDecay: true)),
        ]
        let variants: [(String, Int32)] = [("auto", Int32(LDM_ISA_AUTO)), ("portable", Int32(LDM_ISA_PORTABLE)),
                                           ("avx2_fma", Int32(LDM_ISA_AVX2_FMA))]
        var g = RandomGenerator(seed: 11)
        for count in [1, 7, 8, 9, 37, 1000] {
            let initial = Tensor.randomNormal([count], generator: &g).scalars
            let grads = (0..<4).map { k in Tensor.randomNormal([count], std: k == 2 ? 1e-3 : 1, generator: &g).scalars }
            for (name, h) in configs {
                let reference = run(initial, grads, h) { p, gp, m, v, n, step in
                    AdamKernel.update(parameter: p, gradient: gp, expAvg: m, expAvgSq: v, count: n, step: step, hyper: h)
                }
                XCTAssertTrue(reference.allSatisfy { $0.allSatisfy(\.isFinite) }, "\(name) n=\(count): non-finite reference")
                for (variant, isa) in variants {
                    let got = run(initial, grads, h) { p, gp, m, v, n, step in
                        AdamKernel.updateVectorized(parameter: p, gradient: gp, expAvg: m, expAvgSq: v, count: n, step: step,
                                                    hyper: h, isa: isa)
                    }
                    for (label, a, b) in zip3(["param", "exp_avg", "exp_avg_sq"], got, reference) {
                        let first = zip(a, b).enumerated().first { $0.element.0.bitPattern != $0.element.1.bitPattern }
                        XCTAssertNil(first, "\(name) \(variant) n=\(count) \(label): first difference \(String(describing: first))")
                    }
                }
            }
        }
    }

    /// The fused kernel (gradient scale, step, EMA shadow in one pass) against the three one
    /// after the other: scaling the gradient as clipping does, the plain kernel, then the EMA
    /// kernel. Bit for bit, on every variant and tail length, with and without a shadow.
    func testFusedScaleStepAndAverageEqualTheSeparateOnes() {
        let h = AdamHyperparameters(learningRate: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01,
                                    decoupledWeightDecay: true)
        let variants: [Int32] = [Int32(LDM_ISA_AUTO), Int32(LDM_ISA_PORTABLE), Int32(LDM_ISA_AVX2_FMA)]
        var g = RandomGenerator(seed: 23)
        for count in [1, 7, 8, 9, 17, 1003] {
            let p0 = Tensor.randomNormal([count], generator: &g).scalars
            let s0 = Tensor.randomNormal([count], generator: &g).scalars
            let grads = (0..<3).map { _ in Tensor.randomNormal([count], generator: &g).scalars }
            let scale: Float = 0.37, weight: Float = 0.18
            // Reference: scale in place, step, average.
            var p = p0, m = [Float](repeating: 0, count: count), v = m, s = s0
            for (k, grad) in grads.enumerated() {
                let scaled = grad.map { $0 * scale }
                AdamKernel.update(parameter: &p, gradient: scaled, expAvg: &m, expAvgSq: &v, count: count, step: k + 1, hyper: h)
                ldm_ema_update_f32(&s, p, Int64(count), weight)
            }
            XCTAssertTrue((p + s).allSatisfy(\.isFinite), "n=\(count): non-finite reference")
            XCTAssertNotEqual(s, s0)
            for isa in variants {
                var fp = p0, fm = [Float](repeating: 0, count: count), fv = fm, fs = s0
                var plain = p0, pm = fm, pv = fm
                for (k, grad) in grads.enumerated() {
                    AdamKernel.updateVectorized(parameter: &fp, gradient: grad, expAvg: &fm, expAvgSq: &fv, shadow: &fs,
                                                count: count, step: k + 1, hyper: h, gradientScale: scale,
                                                averagingWeight: weight, isa: isa)
                    // No shadow: the scaled step alone.
                    AdamKernel.updateVectorized(parameter: &plain, gradient: grad, expAvg: &pm, expAvgSq: &pv,
                                                count: count, step: k + 1, hyper: h, gradientScale: scale, isa: isa)
                }
                for (label, a, b) in [("param", fp, p), ("exp_avg", fm, m), ("exp_avg_sq", fv, v), ("shadow", fs, s),
                                      ("param without shadow", plain, p)] {
                    XCTAssertEqual(a.map(\.bitPattern), b.map(\.bitPattern), "isa \(isa) n=\(count): \(label)")
                }
            }
        }
    }

    /// The Adam class runs the vectorised kernel: its result equals the generic kernel's.
    func testOptimizerStepUsesABitIdenticalKernel() {
        let p = Tensor.randomNormal([3, 11], generator: &generator)
        let start = p.scalars
        p.requiresGrad = true
        let grad = Tensor.randomNormal([3, 11], generator: &generator)
        let optimizer = AdamW(parameters: [("w", p)], lr: 1e-2)
        p.grad = grad
        optimizer.step()
        let expected = run(start, [grad.scalars], optimizer.hyperparameters) { pp, gp, m, v, n, step in
            AdamKernel.update(parameter: pp, gradient: gp, expAvg: m, expAvgSq: v, count: n, step: step,
                              hyper: optimizer.hyperparameters)
        }[0]
        XCTAssertEqual(p.scalars.map(\.bitPattern), expected.map(\.bitPattern))
    }

    private var generator = RandomGenerator(seed: 5)

    /// Runs `steps` updates from `initial` with `update(p, g, m, v, n, step)`; returns (p, m, v).
    private func run(_ initial: [Float], _ grads: [[Float]], _ h: AdamHyperparameters,
                     _ update: (UnsafeMutablePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>,
                                UnsafeMutablePointer<Float>, Int, Int) -> Void) -> [[Float]] {
        var p = initial, m = [Float](repeating: 0, count: initial.count), v = m
        for (k, grad) in grads.enumerated() {
            p.withUnsafeMutableBufferPointer { pp in
                m.withUnsafeMutableBufferPointer { mp in
                    v.withUnsafeMutableBufferPointer { vp in
                        grad.withUnsafeBufferPointer { gp in
                            update(pp.baseAddress!, gp.baseAddress!, mp.baseAddress!, vp.baseAddress!, initial.count, k + 1)
                        }
                    }
                }
            }
        }
        return [p, m, v]
    }

    private func zip3<A, B, C>(_ a: [A], _ b: [B], _ c: [C]) -> [(A, B, C)] {
        zip(a, zip(b, c)).map { ($0, $1.0, $1.1) }
    }
}
