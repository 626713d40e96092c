import Foundation
import Models
import NN
import Tensor

/// One first-stage training step of diffusers' AutoencoderKL(in/out 3, block_out_channels
/// (64, 128, 128), layers_per_block 2, latent_channels 4) in this project's layout (f = 4,
/// attention in the mid block only): 16 images of 3×32×32, posterior sample, L1 + 1e-6·KL,
/// backward, AdamW. Benchmarks/pytorch_reference.py times the same step in PyTorch.
enum AutoencoderBenchmark {
    static func config() -> AutoencoderConfig {
        var c = AutoencoderConfig()
        c.resolution = 32
        c.inChannels = 3
        c.outChannels = 3
        c.ch = 64
        c.chMult = [1, 2, 2]
        c.numResBlocks = 2
        c.attnResolutions = []
        c.zChannels = 4
        c.embedDim = 4
        return c
    }

    static func run() {
        var g = RandomGenerator(seed: 1)
        let model = AutoencoderKL(config(), generator: &g)
        let optimizer = AdamW(parameters: model.namedParameters(), lr: 1e-4)
        let x = Tensor.randomNormal([16, 3, 32, 32], std: 0.5, generator: &g).clamped(min: -1, max: 1)
        var noise = RandomGenerator(seed: 2)
        let timing = StepTiming.measure(model: "autoencoder") {
            let posterior = model.encode(x)
            let reconstruction = model.decode(posterior.sample(generator: &noise))
            let loss = (x - reconstruction).abs().mean() + posterior.kl().mean() * 1e-6
            loss.backward()
            optimizer.step()
            optimizer.zeroGrad()
        }
        print(String(format: "autoencoder: %.2f M parameters, batch 16 @ 3x32x32, L1 + KL: %.3f s/step (median of 5), peak RSS %.0f MiB, %@",
                     Double(model.parameterCount) / 1e6, timing.secondsPerStep, timing.peakRSSMiB, ComputeBackends.currentSummary))
        print(timing.jsonLine(model: "autoencoder"))
    }
}
