import XCTest
@testable import Models
import NN
import Tensor

/// The generator step differentiates a cheaper surrogate; its gradients must be the loss's.
final class LossSurrogateTests: XCTestCase {
    func check(_ regularizer: AutoencoderConfig.Regularizer, discriminatorActive: Bool) throws {
        var c = AutoencoderConfig()
        c.regularizer = regularizer
        c.ch = 32
        c.chMult = [1, 2]
        c.numResBlocks = 1
        c.resolution = 32
        c.nEmbed = 8
        var g = RandomGenerator(seed: 3)
        let model = FirstStageModel(c, generator: &g)
        var lossConfig = AutoencoderLossConfig()
        lossConfig.discStart = discriminatorActive ? 0 : 100
        lossConfig.perceptualWeight = 0
        lossConfig.klWeight = 0.1  // large enough that the KL path matters
        let loss = AutoencoderLoss(config: lossConfig, perceptual: nil, imageChannels: 1, generator: &g)
        let x = Tensor.randomUniform([2, 1, 32, 32], low: -1, high: 1, generator: &g)
        var noise = RandomGenerator(seed: 9)
        let forward = model.forward(x, generator: &noise)
        let out = loss.generatorLoss(inputs: x, reconstructions: forward.reconstruction,
                                     regularization: forward.regularization, lastLayer: model.lastLayerWeight, step: 0)
        let parameters = model.module.parameters()
        let direct = gradients(of: out.loss, wrt: parameters)
        let viaSurrogate = gradients(of: out.backwardTarget, wrt: parameters)
        // Same gradient up to float rounding, measured against the gradient's overall size
        // (some parameters, e.g. conv biases before a one-channel GroupNorm group, have a true
        // gradient of zero and only rounding noise).
        var compared = 0
        var squaredNorm = 0.0, squaredDifference = 0.0
        for (a, b) in zip(direct, viaSurrogate) {
            guard let a, let b else { XCTAssertTrue((a == nil) == (b == nil)); continue }
            squaredNorm += a.square().sumAsDouble()
            squaredDifference += (a - b).square().sumAsDouble()
            compared += 1
        }
        XCTAssertLessThanOrEqual(squaredDifference.squareRoot(), 1e-4 * squaredNorm.squareRoot())
        XCTAssertGreaterThan(compared, 10)
        if discriminatorActive { XCTAssertGreaterThan(out.log["d_weight"] ?? 0, 0) }
        // The direct formula for the adaptive weight agrees with the chained one.
        if discriminatorActive {
            let recomputed = loss.adaptiveWeight(nll: gradientsTarget(out), gLoss: -loss.discriminator(forward.reconstruction).mean(),
                                                 lastLayer: model.lastLayerWeight)
            XCTAssertEqual(recomputed, out.log["d_weight"]!, accuracy: 1e-3 * recomputed)
        }

        func gradientsTarget(_ o: AutoencoderLoss.GeneratorOutput) -> Tensor {
            // nll is the loss minus the regulariser and adversarial parts; rebuild it directly.
            let rec = (x - forward.reconstruction).abs()
            switch forward.regularization {
            case .kl: return rec.sum() / 2
            case .codebook: return rec.mean()
            }
        }
    }

    func testKLWithoutDiscriminator() throws { try check(.kl, discriminatorActive: false) }
    func testKLWithDiscriminator() throws { try check(.kl, discriminatorActive: true) }
    func testVQWithDiscriminator() throws { try check(.vq, discriminatorActive: true) }
}

final class PatchGANSizeTests: XCTestCase {
    func testOutputSizeMatchesTheNetwork() {
        var g = RandomGenerator(seed: 1)
        let d = PatchDiscriminator(inChannels: 1, baseChannels: 8, generator: &g)
        for size in [24, 32, 40] {
            let y = withoutGrad { d(Tensor(zeros: [1, 1, size, size])) }
            XCTAssertEqual(y.shape, [1, 1, PatchDiscriminator.outputSize(inputSize: size), PatchDiscriminator.outputSize(inputSize: size)])
        }
        XCTAssertLessThan(PatchDiscriminator.outputSize(inputSize: 16), 1)
    }
}
