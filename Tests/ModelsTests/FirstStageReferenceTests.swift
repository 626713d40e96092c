import Checkpoint
import XCTest
@testable import Models
import NN
import Tensor

/// The whole KL first stage against a float64 PyTorch port of ldm's model.py
/// (Tests/Fixtures/generate_first_stage_fixture.py), weights loaded by their ldm names.
final class FirstStageReferenceTests: XCTestCase {
    /// The generator's CONFIG.
    static var config: AutoencoderConfig {
        var c = AutoencoderConfig()
        c.resolution = 8
        c.inChannels = 3
        c.outChannels = 3
        c.ch = 32
        c.chMult = [1, 1]
        c.numResBlocks = 1
        c.attnResolutions = [4]
        c.zChannels = 4
        c.embedDim = 3
        return c
    }

    func testAutoencoderKLMatchesPyTorch() throws {
        let file = try SafeTensors.read(fixtureURL("first_stage.safetensors"))
        var weights = try tensors(in: file, prefix: "")
        weights = weights.filter { !$0.key.hasPrefix("fixture.") && !$0.key.hasPrefix("resblock.") }
        var g = RandomGenerator(seed: 0)
        let model = AutoencoderKL(Self.config, generator: &g)
        try model.load(stateDict: weights, strict: true)
        model.eval()
        let x = try file.tensor(named: "fixture.input")
        let posterior = withoutGrad { model.encode(x) }
        assertClose(posterior.mean, try file.tensor(named: "fixture.posterior_mean"), atol: 1e-4, rtol: 1e-4)
        assertClose(posterior.logVariance, try file.tensor(named: "fixture.posterior_logvar"), atol: 1e-4, rtol: 1e-4)
        let decoded = withoutGrad { model.decode(posterior.mode()) }
        assertClose(decoded, try file.tensor(named: "fixture.decoded"), atol: 1e-4, rtol: 1e-4)
        assertClose(withoutGrad { model.reconstruct(x) }, decoded, atol: 0, rtol: 0)
    }

    func testResnetBlockWithShortcutMatchesPyTorch() throws {
        let file = try SafeTensors.read(fixtureURL("first_stage.safetensors"))
        var g = RandomGenerator(seed: 0)
        let block = ResnetBlock(inChannels: 32, outChannels: 64, randomSource: RandomSource(seed: 0), generator: &g)
        try block.load(stateDict: try tensors(in: file, prefix: "resblock."), strict: true)
        let y = withoutGrad { block(try! file.tensor(named: "fixture.resblock_input")) }
        assertClose(y, try file.tensor(named: "fixture.resblock_output"), atol: 1e-4, rtol: 1e-4)
    }
}
