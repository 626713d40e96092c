import XCTest
@testable import Models
import NN
import Tensor

/// One small Adam step on each loss term alone moves that term the right way: the gradients
/// reach the parameters that term trains, with the right sign.
final class LossTrainingStepTests: XCTestCase {
    /// Loss before and after one Adam step on `parameters`, recomputed deterministically.
    func lossBeforeAndAfterStep(_ parameters: [(String, Tensor)], lr: Double = 1e-4, _ loss: () -> Tensor) -> (Float, Float) {
        let optimizer = Adam(parameters: parameters, lr: lr, betas: (0.5, 0.9))
        for (_, p) in parameters { p.zeroGrad() }
        let before = loss()
        before.backward()
        XCTAssertTrue(parameters.contains { $0.1.grad.map { $0.abs().sum().item > 0 } ?? false }, "no gradient reached the parameters")
        optimizer.step()
        let after = withoutGrad { loss() }
        return (before.item, after.item)
    }

    func images(_ shape: [Int], seed: UInt64) -> Tensor { randn(shape, seed: seed, scale: 0.5).clamped(min: -1, max: 1) }

    func testL1Step() {
        var g = RandomGenerator(seed: 80)
        let model = AutoencoderKL(tinyAutoencoderConfig(), generator: &g)
        let x = images([2, 1, 8, 8], seed: 81)
        let (before, after) = lossBeforeAndAfterStep(model.namedParameters()) { (x - model.reconstruct(x)).abs().mean() }
        XCTAssertLessThan(after, before)
    }

    func testL1PlusLPIPSStep() throws {
        var g = RandomGenerator(seed: 82)
        var config = tinyAutoencoderConfig()
        config.resolution = 16  // LPIPS pools four times
        let model = AutoencoderKL(config, generator: &g)
        let lpips = try pretrainedLPIPS()
        let x = images([2, 1, 16, 16], seed: 83)
        let (before, after) = lossBeforeAndAfterStep(model.namedParameters()) {
            let xr = model.reconstruct(x)
            return (x - xr).abs().mean() + lpips(x, xr).mean()
        }
        XCTAssertLessThan(after, before)
        // The perceptual part alone also decreases: LPIPS passes useful gradients back.
        let (pBefore, pAfter) = lossBeforeAndAfterStep(model.namedParameters()) { lpips(x, model.reconstruct(x)).mean() }
        XCTAssertLessThan(pAfter, pBefore)
    }

    func testKLStep() {
        var g = RandomGenerator(seed: 84)
        let model = AutoencoderKL(tinyAutoencoderConfig(), generator: &g)
        let x = images([2, 1, 8, 8], seed: 85)
        let (before, after) = lossBeforeAndAfterStep(model.namedParameters()) { model.encode(x).kl().mean() }
        XCTAssertLessThan(after, before)
    }

    func testCodebookStep() {
        var g = RandomGenerator(seed: 86)
        let model = VQModel(tinyAutoencoderConfig(.vq), generator: &g)
        let x = images([2, 1, 8, 8], seed: 87)
        let (before, after) = lossBeforeAndAfterStep(model.namedParameters(), lr: 1e-3) { model.decode(model.encode(x)).quantization.loss }
        XCTAssertLessThan(after, before)
        XCTAssertNotNil(model.quantize.embedding.weight.grad, "the codebook term trains the codebook")
    }

    func testGeneratorAdversarialStep() {
        var g = RandomGenerator(seed: 88)
        let model = AutoencoderKL(tinyAutoencoderConfig(), generator: &g)
        let discriminator = PatchDiscriminator(inChannels: 1, baseChannels: 8, layerCount: 1, generator: &g)
        discriminator.freeze()
        let x = images([2, 1, 8, 8], seed: 89)
        let (before, after) = lossBeforeAndAfterStep(model.namedParameters()) { -discriminator(model.reconstruct(x)).mean() }
        XCTAssertLessThan(after, before, "the generator step must raise D(x̂)")
    }

    func testDiscriminatorHingeStep() {
        var g = RandomGenerator(seed: 90)
        var config = AutoencoderLossConfig()
        config.discStart = 0
        config.discBaseChannels = 8
        let loss = AutoencoderLoss(config: config, perceptual: nil, imageChannels: 1, generator: &g)
        let x = images([2, 1, 32, 32], seed: 91)
        let xr = images([2, 1, 32, 32], seed: 92)
        let (before, after) = lossBeforeAndAfterStep(loss.discriminator.namedParameters(), lr: 1e-3) {
            loss.discriminatorLoss(inputs: x, reconstructions: xr, step: 0).loss
        }
        XCTAssertLessThan(after, before)
    }
}
