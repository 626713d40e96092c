import Diffusion
import Foundation
import Models
import NN
import Tensor

/// One LDM training step of the UNet the issue tracker compares with diffusers'
/// UNet2DConditionModel(block_out_channels (64, 128, 128), layers_per_block 2, cross-attention
/// at the two lower levels, cross_attention_dim 128, head dim 32) on 4×8×8 latents, batch 32,
/// context (32, 8, 128): forward, ε-MSE, backward, AdamW. Compare with
/// Benchmarks/pytorch_reference.py at the same thread count.
enum UNetBenchmark {
    static func config() -> UNetConfig {
        var c = UNetConfig()
        c.inChannels = 4
        c.outChannels = 4
        c.modelChannels = 64
        c.channelMult = [1, 2, 2]
        c.numResBlocks = 2
        c.attentionResolutions = [2, 4]
        c.numHeadChannels = 32
        c.useSpatialTransformer = true
        c.contextDim = 128
        c.legacy = false
        return c
    }

    static func run() {
        var g = RandomGenerator(seed: 1)
        let unet = UNetModel(config(), generator: &g)
        let optimizer = AdamW(parameters: unet.namedParameters(), lr: 1e-4)
        let schedule = NoiseSchedule(.linear, linearStart: 0.00085, linearEnd: 0.012)
        let batch = 32
        let x0 = Tensor.randomNormal([batch, 4, 8, 8], generator: &g)
        let context = CrossAttentionContext(tokens: Tensor.randomNormal([batch, 8, 128], generator: &g))
        func step() {
            var draws = g
            let d = TrainingDraws.draw(globalBatch: batch, sampleShape: [4, 8, 8], slice: (0, 1), timesteps: 1000,
                                       dropProbability: 0, generator: &draws)
            let xt = schedule.qSample(x0, timesteps: d.timesteps, noise: d.noise)
            let loss = diffusionLoss(prediction: unet(xt, timesteps: d.timesteps.map(Double.init), context: context), target: d.noise)
            loss.backward()
            optimizer.step()
            optimizer.zeroGrad()
        }
        let timing = StepTiming.measure(model: "unet", step)
        print(String(format: "unet: %.2f M parameters, batch %d @ 4x8x8, ctx 8x128: %.3f s/step (median of 5), peak RSS %.0f MiB, %@",
                     Double(unet.parameterCount) / 1e6, batch, timing.secondsPerStep, timing.peakRSSMiB, ComputeBackends.currentSummary))
        print(timing.jsonLine(model: "unet"))
    }
}
