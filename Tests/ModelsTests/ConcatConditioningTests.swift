import XCTest
@testable import Models
import NN
import Tensor

/// The reference's `concat` conditioning at the model level: a spatially aligned input joins
/// z_t on the channels of a UNet whose in_channels counts both.
final class ConcatConditioningTests: XCTestCase {
    func model(seed: UInt64) -> LatentDiffusion {
        var c = tinyLatentDiffusionConfig(inChannels: 3)   // 2 latent + 1 condition channel
        c.unet.legacy = false
        c.conditioning.key = .none
        var g = RandomGenerator(seed: seed)
        let m = LatentDiffusion(c, generator: &g)
        var r = RandomGenerator(seed: seed + 1)
        for p in m.parameters() { r.fillNormal(p.buffer, std: 0.2) }
        return m
    }

    func testGradientsThroughAConcatConditionedUNet() {
        let m = model(seed: 1)
        let x = randn([1, 2, 4, 4], seed: 2), condition = randn([1, 1, 4, 4], seed: 3)
        assertGradientsMatch([x, condition], epsilon: 1e-2, atol: 2e-3, rtol: 2e-2, maxElements: 12) { v in
            m.apply(v[0], timesteps: [40], conditioning: UNetConditioning(concat: v[1]))
        }
    }

    func testTheConditionIsTheUNetsExtraInputChannels() {
        let m = model(seed: 4)
        let x = randn([2, 2, 4, 4], seed: 5), condition = randn([2, 1, 4, 4], seed: 6)
        let out = withoutGrad { m.apply(x, timesteps: [10, 20], conditioning: UNetConditioning(concat: condition)) }
        XCTAssertEqual(out.shape, [2, 2, 4, 4])
        let direct = withoutGrad { m.unet(Tensor.concatenate([x, condition], alongAxis: 1), timesteps: [10, 20]) }
        assertClose(out, direct, atol: 0, rtol: 0)
        let other = withoutGrad { m.apply(x, timesteps: [10, 20], conditioning: UNetConditioning(concat: condition * 2)) }
        XCTAssertNotNil(closenessFailure(out, other, atol: 1e-4, rtol: 1e-4), "the condition reaches the output")
        // The doubled guidance batch stacks the conditions batch-wise.
        let both = UNetConditioning.concatenated(UNetConditioning(concat: condition), UNetConditioning(concat: condition * 2))
        XCTAssertEqual(both.concat?.shape, [4, 1, 4, 4])
    }
}
