import Checkpoint
import Diffusion
import Foundation
import XCTest
@testable import Models
import NN
import Tensor

/// The UNet against the reference implementation (CompVis latent-diffusion's UNetModel in
/// float64, Tests/Fixtures/generate_unet_fixtures.py): every parameter loaded by its reference
/// key, the forward pass, the training loss and every parameter's gradient, for a
/// cross-attention model, an adm model with legacy-order attention and scale-shift norm, and
/// one with the new attention order. Every parameter, zero-initialised convs included, is
/// random in the fixtures, so each path carries signal.
final class UNetReferenceTests: XCTestCase {
    struct Fixture {
        let file: SafeTensorsFile
        let model: UNetModel
        let config: UNetConfig
    }

    func load(_ name: String) throws -> Fixture {
        let file = try SafeTensors.read(fixtureURL(name))
        let json = try XCTUnwrap(file.metadata["config"])
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let unetJSON = try JSONSerialization.data(withJSONObject: object["unet"] ?? object)
        let config = try JSONDecoder().decode(UNetConfig.self, from: unetJSON)
        var g = RandomGenerator(seed: 1)
        let model = UNetModel(config, generator: &g)
        let params = try tensors(in: file, prefix: "params.")
        XCTAssertEqual(Set(params.keys), Set(model.stateDict().keys), "reference keys vs ours")
        try model.load(stateDict: params, strict: true)
        return Fixture(file: file, model: model, config: config)
    }

    func inputs(_ f: Fixture) throws -> (context: CrossAttentionContext?, y: [Int]?) {
        let context = f.file.contains("inputs.context") ? CrossAttentionContext(tokens: try f.file.tensor(named: "inputs.context")) : nil
        let y = f.file.contains("inputs.y") ? try f.file.tensor(named: "inputs.y").scalars.map { Int($0) } : nil
        return (context, y)
    }

    func checkForwardLossAndGradients(_ name: String) throws {
        let f = try load(name)
        let (context, y) = try inputs(f)
        let x = try f.file.tensor(named: "inputs.x")
        let timesteps = try f.file.tensor(named: "inputs.timesteps").scalars.map(Double.init)
        let eps = withoutGrad { f.model(x, timesteps: timesteps, context: context, y: y) }
        assertClose(eps, try f.file.tensor(named: "outputs.eps"), atol: 1e-4, rtol: 1e-4)

        // One training step's loss and every gradient, through q_sample on the reference schedule.
        let schedule = NoiseSchedule(.linear, timesteps: 1000, linearStart: 0.0015, linearEnd: 0.0195)
        let x0 = try f.file.tensor(named: "inputs.x0"), noise = try f.file.tensor(named: "inputs.noise")
        let t = try f.file.tensor(named: "inputs.t").scalars.map { Int($0) }
        let xt = schedule.qSample(x0, timesteps: t, noise: noise)
        assertClose(xt, try f.file.tensor(named: "outputs.x_t"), atol: 1e-5, rtol: 1e-5)
        let loss = diffusionLoss(prediction: f.model(xt, timesteps: t.map(Double.init), context: context, y: y), target: noise)
        XCTAssertEqual(Double(loss.item), Double(try f.file.tensor(named: "outputs.loss").scalars[0]), accuracy: 1e-5)
        f.model.zeroGrad()
        loss.backward()
        var compared = 0
        for (key, p) in f.model.namedParameters() {
            let reference = try f.file.tensor(named: "grads." + key)
            let grad = try XCTUnwrap(p.grad, "no gradient for \(key)")
            let scale = max(reference.buffer.map(abs).max() ?? 0, 1e-3)
            if let failure = closenessFailure(grad, reference, atol: 2e-4 * scale, rtol: 1e-3) {
                XCTFail("\(name) grads.\(key): \(failure)")
            }
            compared += 1
        }
        XCTAssertEqual(compared, f.model.namedParameters().count)
    }

    func testCrossAttentionUNetMatchesReference() throws { try checkForwardLossAndGradients("unet_crossattn.safetensors") }
    func testADMUNetWithLegacyAttentionAndScaleShiftMatchesReference() throws { try checkForwardLossAndGradients("unet_adm.safetensors") }
    func testNewAttentionOrderUNetMatchesReference() throws { try checkForwardLossAndGradients("unet_attn_new_order.safetensors") }

    func testTimestepEmbeddingMatchesReference() throws {
        let f = try load("unet_crossattn.safetensors")
        let timesteps = try f.file.tensor(named: "inputs.timesteps").scalars.map(Double.init)
        assertClose(timestepEmbedding(timesteps, dimension: 32), try f.file.tensor(named: "outputs.t_emb"), atol: 1e-6, rtol: 1e-6)
    }

    /// The reference DDIMSampler (S = 5, η = 0, guidance 3 with an unconditional context) on
    /// fixture (a)'s UNet: the same trajectory, step by step.
    func testDDIMTrajectoryWithGuidanceMatchesReference() throws {
        let f = try load("unet_crossattn.safetensors")
        let xT = try f.file.tensor(named: "ddim.trajectory.x_T")
        let cond = CrossAttentionContext(tokens: try f.file.tensor(named: "ddim.trajectory.context"))
        let uncond = CrossAttentionContext(tokens: try f.file.tensor(named: "ddim.trajectory.uncond_context"))
        let both = CrossAttentionContext.concatenated([uncond, cond])
        let schedule = NoiseSchedule(.linear, timesteps: 1000, linearStart: 0.0015, linearEnd: 0.0195)
        let sampler = try DDIMSampler(schedule: schedule, steps: 5, eta: 0)
        XCTAssertEqual(sampler.timesteps, try f.file.tensor(named: "ddim.trajectory.timesteps").scalars.map { Int($0) })
        let model = f.model
        let denoiser = ClassifierFreeGuidance.guided(
            scale: 3, conditional: { x, t in model(x, timesteps: t.map(Double.init), context: cond) },
            doubled: { x, t in model(x, timesteps: t.map(Double.init), context: both) })
        var generators = [RandomGenerator(seed: 1), RandomGenerator(seed: 2)]
        let samples = ReverseDiffusion.sample(sampler, from: xT, parameterization: .eps, generators: &generators, model: denoiser)
        let reference = try f.file.tensor(named: "ddim.trajectory.samples")
        let scale = reference.buffer.map(abs).max() ?? 1
        assertClose(samples, reference, atol: 1e-4 * scale, rtol: 1e-4)
    }
}
