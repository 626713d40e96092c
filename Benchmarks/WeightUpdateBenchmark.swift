import Foundation
import Models
import NN
import Tensor

/// The weight update of one LDM training step on the benchmark UNet's 10.07 M parameters,
/// part by part: the part every data-parallel rank runs in full, whatever the batch.
enum WeightUpdateBenchmark {
    static func run() {
        var g = RandomGenerator(seed: 1)
        let unet = UNetModel(UNetBenchmark.config(), generator: &g)
        let parameters = unet.parameters()
        let optimizer = AdamW(parameters: unet.namedParameters(), lr: 1e-4)
        let ema = ExponentialMovingAverage(model: unet, decay: 0.9999)
        let grads = parameters.map { Tensor.randomNormal($0.shape, generator: &g) }
        func setGradients() { for (p, gr) in zip(parameters, grads) { p.grad = gr.copy() } }
        func ms(_ body: () -> Void) -> Double {
            var best = Double.infinity
            for _ in 0..<5 {
                setGradients()
                let start = DispatchTime.now().uptimeNanoseconds
                body()
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
            }
            return best
        }
        let norm = ms { _ = clipGradNorm(parameters, maxNorm: .infinity) }
        let clip = ms { _ = clipGradNorm(parameters, maxNorm: 1e-3) }
        let adam = ms { optimizer.step() }
        let average = ms { ema.update(from: unet) }
        let zero = ms { optimizer.zeroGrad() }
        let separate = ms {
            _ = clipGradNorm(parameters, maxNorm: 1e-3)
            optimizer.step()
            optimizer.zeroGrad()
            ema.update(from: unet)
        }
        let fused = ms {
            optimizer.clipAndStep(maxNorm: 1e-3, averaging: ema, of: unet)
            optimizer.zeroGrad()
        }
        print(String(format: "update: %.2f M parameters: gradient norm %.2f ms, norm + clipping %.2f ms, AdamW %.2f ms, EMA %.2f ms, zero grads %.2f ms",
                     Double(unet.parameterCount) / 1e6, norm, clip, adam, average, zero))
        print(String(format: "update: the four one after the other %.2f ms, in one pass (Adam.clipAndStep) %.2f ms (%.2fx)",
                     separate, fused, separate / fused))
    }
}
