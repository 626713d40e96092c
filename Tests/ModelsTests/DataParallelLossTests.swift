import XCTest
@testable import Models
import NN
import Tensor

/// What the first-stage loss needs so that R ranks on slices of a global batch compute what
/// one process on the whole batch would: the same posterior noise per sample, and the
/// adaptive weight from the global batch's last-layer gradients.
final class DataParallelLossTests: XCTestCase {
    func tinyModel(seed: UInt64) -> (FirstStageModel, AutoencoderLoss) {
        var c = AutoencoderConfig()
        c.ch = 32
        c.chMult = [1, 2]
        c.numResBlocks = 1
        c.resolution = 32
        var g = RandomGenerator(seed: seed)
        let model = FirstStageModel(c, generator: &g)
        var lossConfig = AutoencoderLossConfig()
        lossConfig.discStart = 0
        lossConfig.perceptualWeight = 0
        let loss = AutoencoderLoss(config: lossConfig, perceptual: nil, imageChannels: 1, generator: &g)
        // Per-sample discriminator (running statistics): synchronised BatchNorm is tested apart.
        loss.discriminator.eval()
        return (model, loss)
    }

    func testPosteriorNoiseSliceIsTheGlobalBatchsRows() {
        var g = RandomGenerator(seed: 5)
        let mean = Tensor.randomNormal([6, 2, 3, 3], generator: &g), logVariance = Tensor.randomNormal([6, 2, 3, 3], generator: &g)
        var shared = RandomGenerator(seed: 11)
        let full = DiagonalGaussian(mean: mean, logVariance: logVariance).sample(generator: &shared)
        for r in 0..<3 {
            var rankGenerator = RandomGenerator(seed: 11)
            let rows = r * 2..<(r + 1) * 2
            let posterior = DiagonalGaussian(mean: mean.slice(alongAxis: 0, rows).copy(),
                                             logVariance: logVariance.slice(alongAxis: 0, rows).copy())
            let z = posterior.sample(generator: &rankGenerator, batchSlice: r, of: 3)
            XCTAssertEqual(z.scalars, full.slice(alongAxis: 0, rows).copy().scalars, "rank \(r)")
            XCTAssertEqual(rankGenerator.state, shared.state, "every rank's generator advances as the single process's")
        }
    }

    /// d_weight on two ranks (batch 2 each) with the last-layer gradients averaged equals the
    /// single process's on the global batch of 4; without averaging it does not.
    func testAveragedLastLayerGradientsGiveTheGlobalBatchsAdaptiveWeight() throws {
        let (model, loss) = tinyModel(seed: 3)
        var g = RandomGenerator(seed: 4)
        let x = Tensor.randomUniform([4, 1, 32, 32], low: -1, high: 1, generator: &g)

        func adaptiveWeight(_ input: Tensor, slice: (Int, Int)) -> Float {
            var noise = RandomGenerator(seed: 9)
            let forward = model.forward(input, generator: &noise, noiseSlice: slice)
            let out = loss.generatorLoss(inputs: input, reconstructions: forward.reconstruction,
                                         regularization: forward.regularization, lastLayer: model.lastLayerWeight, step: 0)
            return out.log["d_weight"]!
        }
        let single = adaptiveWeight(x, slice: (0, 1))
        XCTAssertGreaterThan(single, 0)
        let halves = [x.slice(alongAxis: 0, 0..<2).copy(), x.slice(alongAxis: 0, 2..<4).copy()]

        // An allreduce-mean played in two rounds (the computation is deterministic): first
        // each rank's buffer is recorded, then each rank receives the mean of the records.
        var contributions: [[Float]] = []
        loss.lastLayerGradientAverager = { contributions.append(Array($0)) }
        let local = (0..<2).map { adaptiveWeight(halves[$0], slice: ($0, 2)) }
        XCTAssertEqual(contributions.count, 2)
        let mean = zip(contributions[0], contributions[1]).map { ($0 + $1) / 2 }
        var round = 0
        loss.lastLayerGradientAverager = { buffer in
            XCTAssertEqual(Array(buffer), contributions[round], "rank \(round) contributes the same as in the first round")
            for i in buffer.indices { buffer[i] = mean[i] }
            round += 1
        }
        let synchronised = (0..<2).map { adaptiveWeight(halves[$0], slice: ($0, 2)) }
        XCTAssertEqual(synchronised[0], synchronised[1], "every rank uses the same weight")
        XCTAssertEqual(synchronised[0], single, accuracy: 1e-4 * single)
        // The test can tell: the ranks' own weights are not the global one.
        XCTAssertGreaterThan(local.map { abs($0 - single) / single }.max()!, 1e-3, "local \(local), global \(single)")
    }
}
