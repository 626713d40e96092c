import Checkpoint
import XCTest
@testable import Models
import NN
import Tensor

/// The KL generator loss (LPIPS on, adaptive weight) and the hinge discriminator loss against
/// a PyTorch computation following ldm's contperceptual.py
/// (Tests/Fixtures/generate_first_stage_fixture.py, `loss_fixture`).
final class AutoencoderLossReferenceTests: XCTestCase {
    func testGeneratorAndDiscriminatorLossesMatchPyTorch() throws {
        let file = try SafeTensors.read(fixtureURL("first_stage_loss.safetensors"))
        var config = AutoencoderLossConfig()
        config.klWeight = 1e-2
        config.discWeight = 0.5
        config.perceptualWeight = 1
        config.discStart = 0
        config.discBaseChannels = 8
        config.discNumLayers = 3
        var g = RandomGenerator(seed: 0)
        let loss = AutoencoderLoss(config: config, perceptual: try pretrainedLPIPS(), imageChannels: 3, generator: &g)
        try loss.discriminator.load(stateDict: try tensors(in: file, prefix: "disc."), strict: true)

        let x = try file.tensor(named: "fixture.inputs")
        let lastWeight = try file.tensor(named: "fixture.last_weight").asParameter()
        let lastBias = try file.tensor(named: "fixture.last_bias")
        // The "decoder's last layer": x̂ = conv3(features), so d_weight has a graph to differentiate.
        let xr = try file.tensor(named: "fixture.features").conv2d(weight: lastWeight, bias: lastBias, padding: Padding2D(1))
        let posterior = DiagonalGaussian(mean: try file.tensor(named: "fixture.posterior_mean"),
                                         logVariance: try file.tensor(named: "fixture.posterior_logvar"))
        let out = loss.generatorLoss(inputs: x, reconstructions: xr, regularization: .kl(posterior), lastLayer: lastWeight, step: 1)
        func expected(_ name: String) throws -> Float { try file.tensor(named: "expected." + name).item }
        for name in ["nll_loss", "kl_loss", "g_loss", "d_weight", "total_loss"] {
            let want = try expected(name)
            XCTAssertEqual(out.log[name]!, want, accuracy: 1e-4 * max(1, abs(want)), name)
        }
        XCTAssertEqual(out.loss.item, try expected("total_loss"), accuracy: 1e-4 * abs(try expected("total_loss")))
        XCTAssertEqual(out.log["disc_factor"], 1)
        // The gradient the autoencoder step applies to the last layer (d_weight held constant).
        let gradTotal = try XCTUnwrap(gradients(of: out.loss, wrt: [lastWeight])[0])
        let wantTotal = try file.tensor(named: "expected.grad_total_last_weight")
        assertClose(gradTotal, wantTotal, atol: 1e-4 * wantTotal.abs().maxValue(), rtol: 1e-4)

        let d = loss.discriminatorLoss(inputs: x, reconstructions: xr, step: 1)
        XCTAssertEqual(d.loss.item, try expected("disc_loss"), accuracy: 1e-5)
        // Discriminator weight gradients in training mode (batch statistics), as PyTorch.
        let state = loss.discriminator.stateDict()
        let discGrads = gradients(of: d.loss, wrt: [state["main.0.weight"]!, state["main.5.weight"]!])
        for (grad, name) in zip(discGrads, ["main0", "main5"]) {
            let want = try file.tensor(named: "expected.grad_disc_loss_\(name)")
            assertClose(try XCTUnwrap(grad), want, atol: 1e-4 * want.abs().maxValue(), rtol: 1e-3)
        }
    }

    func testBeforeDiscStartTheAdversarialTermIsOff() throws {
        var config = AutoencoderLossConfig()
        config.discStart = 10
        config.discBaseChannels = 8
        var g = RandomGenerator(seed: 1)
        let loss = AutoencoderLoss(config: config, perceptual: nil, imageChannels: 1, generator: &g)
        let w = randn([1, 2, 3, 3], seed: 2).asParameter()
        let xr = randn([2, 2, 32, 32], seed: 3).conv2d(weight: w, padding: Padding2D(1))
        let x = randn([2, 1, 32, 32], seed: 4)
        let posterior = DiagonalGaussian(mean: randn([2, 2, 4, 4], seed: 5), logVariance: randn([2, 2, 4, 4], seed: 6))
        let early = loss.generatorLoss(inputs: x, reconstructions: xr, regularization: .kl(posterior), lastLayer: w, step: 9)
        XCTAssertEqual(early.log["disc_factor"], 0)
        // The KL term, computed independently: 0.5·Σ(μ² + σ² − 1 − log σ²) over C, H, W, / batch.
        let mu = posterior.mean.scalars.map(Double.init), logVar = posterior.logVariance.scalars.map(Double.init)
        let kl = zip(mu, logVar).map { m, lv in 0.5 * (m * m + exp(lv) - 1 - lv) }.reduce(0, +) / 2
        XCTAssertEqual(Double(early.log["kl_loss"]!), kl, accuracy: 1e-5 * kl)
        // The total is nll + kl_weight·kl with nothing else before disc_start. With the default
        // weight 1e-6 the KL term (~3e-5) is below float resolution of a ~1e3 loss, so the sum is
        // checked with a weight that makes it visible.
        var visible = config
        visible.klWeight = 1
        let withKL = AutoencoderLoss(config: visible, perceptual: nil, imageChannels: 1, generator: &g)
            .generatorLoss(inputs: x, reconstructions: xr, regularization: .kl(posterior), lastLayer: w, step: 9)
        let nll = Double(withKL.log["nll_loss"]!)
        XCTAssertEqual(Double(withKL.loss.item) - nll, kl, accuracy: 1e-3 * kl + 1e-6 * nll)
        XCTAssertEqual(Double(early.loss.item), nll, accuracy: 1e-6 * nll)
        XCTAssertEqual(loss.discriminatorLoss(inputs: x, reconstructions: xr, step: 9).loss.item, 0)
    }
}
