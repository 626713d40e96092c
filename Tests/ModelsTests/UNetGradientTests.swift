import Diffusion
import XCTest
@testable import Models
import NN
import Tensor

/// Finite-difference checks through small UNets: with cross-attention to contexts of several
/// lengths (gradients to the latent, the context and parameters), and the adm path.
final class UNetGradientTests: XCTestCase {
    func tinyConfig() -> UNetConfig {
        var c = UNetConfig()
        c.inChannels = 2
        c.outChannels = 2
        c.modelChannels = 32
        c.channelMult = [1, 1]
        c.numResBlocks = 1
        c.attentionResolutions = [2]
        c.numHeadChannels = 16
        c.contextDim = 6
        c.useSpatialTransformer = true
        c.legacy = false
        return c
    }

    /// Randomises every parameter (zero-initialised convs included) so no path is dead.
    func randomize(_ m: Module, seed: UInt64) {
        var g = RandomGenerator(seed: seed)
        for p in m.parameters() { g.fillNormal(p.buffer, std: 0.3) }
    }

    func testGradientsThroughCrossAttentionUNetForSeveralContextLengths() {
        var g = RandomGenerator(seed: 3)
        let model = UNetModel(tinyConfig(), generator: &g)
        randomize(model, seed: 4)
        for length in [1, 3] {
            let x = randn([1, 2, 4, 4], seed: 5)
            let tokens = randn([1, length, 6], seed: 6 + UInt64(length))
            assertGradientsMatch([x, tokens], epsilon: 1e-2, atol: 2e-3, rtol: 2e-2, maxElements: 12) { v in
                model(v[0], timesteps: [17], context: CrossAttentionContext(tokens: v[1]))
            }
        }
        // Parameters deep inside: the cross-attention key projection and the zero-init output conv.
        let params = Dictionary(uniqueKeysWithValues: model.namedParameters())
        let chosen = ["middle_block.1.transformer_blocks.0.attn2.to_k.weight", "out.2.weight",
                      "input_blocks.1.0.emb_layers.1.weight", "time_embed.0.weight"]
        let x = randn([1, 2, 4, 4], seed: 9), tokens = randn([1, 2, 6], seed: 10)
        for name in chosen {
            let p = params[name]!
            let saved = p.copy()
            assertGradientsMatch([p], epsilon: 1e-2, atol: 2e-3, rtol: 2e-2, maxElements: 8) { v in
                model(x, timesteps: [401], context: CrossAttentionContext(tokens: tokens))
            }
            p.assign(saved)
            p.requiresGrad = true
        }
    }

    func testGradientsThroughADMUNetWithPlainAttention() {
        var c = tinyConfig()
        c.contextDim = nil
        c.useSpatialTransformer = false
        c.numClasses = 3
        c.useScaleShiftNorm = true
        var g = RandomGenerator(seed: 11)
        let model = UNetModel(c, generator: &g)
        randomize(model, seed: 12)
        let x = randn([2, 2, 4, 4], seed: 13)
        assertGradientsMatch([x], epsilon: 1e-2, atol: 2e-3, rtol: 2e-2, maxElements: 16) { v in
            model(v[0], timesteps: [3, 900], y: [0, 2])
        }
    }

    func testPaddedContextTokensDoNotChangeTheOutput() {
        var g = RandomGenerator(seed: 14)
        let model = UNetModel(tinyConfig(), generator: &g)
        randomize(model, seed: 15)
        let x = randn([1, 2, 4, 4], seed: 16)
        let short = randn([1, 2, 6], seed: 17)
        let padded = Tensor.concatenate([short, randn([1, 3, 6], seed: 18)], alongAxis: 1)
        let a = withoutGrad { model(x, timesteps: [5], context: CrossAttentionContext(tokens: short)) }
        let b = withoutGrad {
            model(x, timesteps: [5], context: CrossAttentionContext(tokens: padded, paddingMask: [[false, false, true, true, true]]))
        }
        assertClose(a, b, atol: 1e-5, rtol: 1e-5)
    }

    func testZeroInitialisedOutputsMakeAFreshUNetPredictZero() {
        var g = RandomGenerator(seed: 19)
        let model = UNetModel(tinyConfig(), generator: &g)
        let out = withoutGrad { model(randn([2, 2, 4, 4], seed: 20), timesteps: [1, 2], context: CrossAttentionContext(tokens: randn([2, 1, 6]))) }
        XCTAssertEqual(out.buffer.map(abs).max(), 0)
        XCTAssertTrue(model.parameters().allSatisfy { $0.buffer.allSatisfy(\.isFinite) })
    }
}
