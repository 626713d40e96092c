import Diffusion
import XCTest
@testable import Models
import NN
import Tensor

/// The concat and hybrid conditioning keys: the spatial input joins z_t on the channels,
/// gradients flow to both, nothing drops it, and configs that cannot work are refused by key.
final class SpatialConditioningTests: XCTestCase {
    func config(key: ConditioningConfig.Key, task: SpatialConditionConfig.Task = .superResolution, conditionChannels: Int = 1) -> LatentDiffusionConfig {
        var c = tinyLatentDiffusionConfig(inChannels: 2 + conditionChannels)
        c.unet.useSpatialTransformer = true
        c.unet.legacy = false
        c.conditioning.key = key
        c.conditioning.spatial = SpatialConditionConfig(task: task, factor: 2)
        if key == .hybrid {
            c.unet.contextDim = 8
            c.conditioning.numClasses = 3
        }
        c.schedule.timesteps = 50
        return c
    }

    func randomize(_ m: Module, seed: UInt64) {
        var g = RandomGenerator(seed: seed)
        for p in m.parameters() { g.fillNormal(p.buffer, std: 0.3) }
    }

    func testGradientsReachTheLatentAndTheConcatenatedInput() throws {
        var g = RandomGenerator(seed: 1)
        let model = LatentDiffusion(config(key: .concat), generator: &g)
        randomize(model, seed: 2)
        let x = randn([1, 2, 4, 4], seed: 3), spatial = randn([1, 1, 4, 4], seed: 4)
        assertGradientsMatch([x, spatial], epsilon: 1e-2, atol: 2e-3, rtol: 2e-2, maxElements: 12) { v in
            model.apply(v[0], timesteps: [21], conditioning: UNetConditioning(concat: v[1]))
        }
        // The first convolution's weight over the condition channel.
        let weight = Dictionary(uniqueKeysWithValues: model.namedParameters())["model.diffusion_model.input_blocks.0.0.weight"]!
        XCTAssertEqual(weight.shape, [32, 3, 3, 3])
        assertGradientsMatch([weight], epsilon: 1e-2, atol: 2e-3, rtol: 2e-2, maxElements: 8) { _ in
            model.apply(x, timesteps: [7], conditioning: UNetConditioning(concat: spatial))
        }
    }

    func testTheSpatialInputChangesTheOutputAndIsRequired() throws {
        var g = RandomGenerator(seed: 5)
        let model = LatentDiffusion(config(key: .concat), generator: &g)
        randomize(model, seed: 6)
        XCTAssertNil(model.condStageModel, "τ is the identity for a concatenated input")
        let x = randn([2, 2, 4, 4], seed: 7)
        let a = try model.conditioning(ConditionBatch(count: 2, spatial: randn([2, 1, 4, 4], seed: 8)), dropped: [])
        let b = try model.conditioning(ConditionBatch(count: 2, spatial: randn([2, 1, 4, 4], seed: 9)), dropped: [])
        let ya = withoutGrad { model.apply(x, timesteps: [3, 40], conditioning: a) }
        let yb = withoutGrad { model.apply(x, timesteps: [3, 40], conditioning: b) }
        XCTAssertEqual(ya.shape, [2, 2, 4, 4])
        XCTAssertTrue(ya.scalars.allSatisfy(\.isFinite) && yb.scalars.allSatisfy(\.isFinite))
        XCTAssertGreaterThan(zip(ya.scalars, yb.scalars).map { abs($0 - $1) }.max()!, 1e-3)
        XCTAssertThrowsError(try model.conditioning(ConditionBatch(count: 2), dropped: [])) {
            XCTAssertEqual($0 as? ConditionerError, .missingSpatial)
        }
        XCTAssertThrowsError(try model.conditioning(ConditionBatch(count: 2, spatial: randn([2, 3, 4, 4], seed: 1)), dropped: [])) {
            XCTAssertTrue("\($0)".contains("1 condition channels"), "\($0)")
        }
        // No guidance branch for a model whose only condition is the image.
        XCTAssertFalse(model.config.conditioning.isGuidable)
    }

    func testHybridDropsTheClassButKeepsTheImageInTheGuidanceBranch() throws {
        var g = RandomGenerator(seed: 10)
        let model = LatentDiffusion(config(key: .hybrid, task: .inpainting, conditionChannels: 3), generator: &g)
        XCTAssertTrue(model.condStageModel is ClassEmbedder)
        XCTAssertTrue(model.config.conditioning.isGuidable)
        let spatial = randn([2, 3, 4, 4], seed: 11)
        let batch = ConditionBatch(count: 2, labels: [0, 2], spatial: spatial)
        let conditional = try model.conditioning(batch, dropped: [false, false])
        let unconditional = try model.unconditional(batch)
        XCTAssertNotNil(conditional.context)
        XCTAssertEqual(unconditional.concat!.scalars, spatial.scalars)
        XCTAssertEqual(unconditional.context!.tokens.scalars, model.condStageModel!.unconditional(count: 2).context!.tokens.scalars)
        // Guided sampling runs the doubled batch [uncond; cond], both with the image.
        let denoiser = try model.denoiser(conditions: batch, guidanceScale: 3)
        let out = withoutGrad { denoiser(randn([2, 2, 4, 4], seed: 12), [10, 10]) }
        XCTAssertEqual(out.shape, [2, 2, 4, 4])
        XCTAssertTrue(out.scalars.allSatisfy(\.isFinite))
    }

    func testConfigsThatCannotWorkAreRefusedByKey() {
        var c = config(key: .concat)
        c.conditioning.spatial = nil
        XCTAssertTrue(c.validationErrors().contains { $0.contains("model.conditioning.spatial is required") }, "\(c.validationErrors())")
        c = config(key: .concat)
        c.unet.contextDim = 8
        XCTAssertTrue(c.validationErrors().contains { $0.contains("key concat has no context") })
        c = config(key: .crossattn)
        c.unet.contextDim = 8
        c.conditioning.numClasses = 2
        XCTAssertTrue(c.validationErrors().contains { $0.contains("spatial is set but key is crossattn") })
        c = config(key: .concat)
        c.conditioning.spatial?.boxFraction = 2
        XCTAssertTrue(c.validationErrors().contains { $0.contains("box_fraction") })
        XCTAssertEqual(config(key: .hybrid).validationErrors(), [])
        XCTAssertEqual(SpatialConditionConfig(task: .inpainting).channels(latentChannels: 4, imageChannels: 1), 5)
        XCTAssertEqual(SpatialConditionConfig(task: .superResolution).channels(latentChannels: 4, imageChannels: 3), 3)
    }
}
