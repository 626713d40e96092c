import Diffusion
import Foundation
import Tensor
import XCTest

final class SamplerTests: XCTestCase {
    let schedule = NoiseSchedule(.linear, timesteps: 200, linearStart: 0.0015, linearEnd: 0.0195)

    /// A smooth stand-in denoiser whose output depends on x and t.
    func toyModel(_ x: Tensor, _ t: [Int]) -> Tensor {
        let scale = Tensor(shape: [t.count, 1, 1, 1], scalars: t.map { Float($0) / 400 + 0.1 })
        return (x * scale).map { Foundation.tanh($0) }
    }

    func testDDIMWithEtaZeroIsDeterministicWhateverTheNoiseStreams() throws {
        let sampler = try DDIMSampler(schedule: schedule, steps: 20, eta: 0)
        XCTAssertFalse((0..<sampler.timesteps.count).contains { sampler.addsNoise(at: $0) })
        let xT = randn([2, 1, 2, 2], seed: 1)
        var g1 = [RandomGenerator(seed: 1), RandomGenerator(seed: 2)], g2 = [RandomGenerator(seed: 7), RandomGenerator(seed: 8)]
        let a = ReverseDiffusion.sample(sampler, from: xT, parameterization: .eps, generators: &g1, model: toyModel)
        let b = ReverseDiffusion.sample(sampler, from: xT, parameterization: .eps, generators: &g2, model: toyModel)
        XCTAssertEqual(a.scalars, b.scalars)
        XCTAssertTrue(a.scalars.allSatisfy(\.isFinite))
        XCTAssertEqual(sampler.timesteps.count, 20)
        XCTAssertEqual(sampler.timesteps.first, 191)
        XCTAssertEqual(sampler.timesteps.last, 1)
    }

    /// With S = T and η = 1, every DDIM step (t ≥ 1) is DDPM's ancestral step: the same
    /// posterior mean and the same standard deviation β̃_t.
    func testDDIMWithAllStepsAndEtaOneIsTheDDPMPosteriorStep() throws {
        let ddim = try DDIMSampler(schedule: schedule, steps: schedule.timesteps, eta: 1)
        let ddpm = DDPMSampler(schedule: schedule)
        XCTAssertEqual(ddim.timesteps, ddpm.timesteps)
        let x = randn([3, 1, 2, 2], seed: 3), noise = randn([3, 1, 2, 2], seed: 4)
        for index in [0, 50, 150, schedule.timesteps - 2] {
            let t = ddim.timesteps[index]
            XCTAssertGreaterThanOrEqual(t, 1)
            let ts = Array(repeating: t, count: 3)
            let out = toyModel(x, ts)
            let (eps, x0) = schedule.prediction(out, parameterization: .eps, noisy: x, timesteps: ts)
            XCTAssertEqual(ddim.sigmas[schedule.timesteps - 1 - index] * ddim.sigmas[schedule.timesteps - 1 - index],
                           schedule.posteriorVariance(t), accuracy: 1e-12)
            let a = ddim.step(x, eps: eps, start: x0, index: index, noise: noise)
            let b = ddpm.step(x, eps: eps, start: x0, index: index, noise: noise)
            assertClose(a, b, atol: 2e-5, rtol: 1e-4)
        }
    }

    func testDDPMVisitsEveryStepAndAddsNoNoiseAtTheLast() {
        let ddpm = DDPMSampler(schedule: schedule)
        XCTAssertEqual(ddpm.timesteps.count, 200)
        XCTAssertTrue(ddpm.addsNoise(at: 0))
        XCTAssertFalse(ddpm.addsNoise(at: 199))
    }

    func testStepCountsOutsideTheScheduleAreRefused() {
        XCTAssertThrowsError(try DDIMSampler(schedule: schedule, steps: 0))
        XCTAssertThrowsError(try DDIMSampler(schedule: schedule, steps: 201))
        XCTAssertThrowsError(try DDIMSampler(schedule: schedule, steps: 10, eta: -1))
        XCTAssertNoThrow(try DDIMSampler(schedule: schedule, steps: 200))
    }

    func testGuidanceScaleOneIsTheConditionalPredictionAndOtherScalesExtrapolate() {
        let conditional: DenoiserOutput = { x, _ in x * 2 }
        var doubledCalls = 0
        let doubled: DenoiserOutput = { x, _ in
            doubledCalls += 1
            let b = x.shape[0] / 2
            return Tensor.concatenate([x.slice(alongAxis: 0, 0..<b) * 0.5, x.slice(alongAxis: 0, b..<2 * b) * 2], alongAxis: 0)
        }
        let x = randn([2, 1, 2, 2], seed: 5)
        let one = ClassifierFreeGuidance.guided(scale: 1, conditional: conditional, doubled: doubled)(x, [3, 3])
        XCTAssertEqual(one.scalars, (x * 2).scalars)
        XCTAssertEqual(doubledCalls, 0)
        let three = ClassifierFreeGuidance.guided(scale: 3, conditional: conditional, doubled: doubled)(x, [3, 3])
        assertClose(three, x * 0.5 + (x * 2 - x * 0.5) * 3, atol: 1e-6, rtol: 1e-6)
        XCTAssertEqual(doubledCalls, 1)
    }

    /// A sample depends on its own noise stream only: sampled alone or in a batch, the same.
    func testAncestralSamplesDoNotDependOnTheirBatch() throws {
        let sampler = try DDIMSampler(schedule: schedule, steps: 10, eta: 1)
        let x = randn([3, 1, 2, 2], seed: 6)
        var all = (0..<3).map { RandomGenerator(seed: 100 + UInt64($0)) }
        let batch = ReverseDiffusion.sample(sampler, from: x, parameterization: .eps, generators: &all, model: toyModel)
        var single = [RandomGenerator(seed: 102)]
        let alone = ReverseDiffusion.sample(sampler, from: x.slice(alongAxis: 0, 2..<3), parameterization: .eps,
                                            generators: &single, model: toyModel)
        XCTAssertEqual(batch.slice(alongAxis: 0, 2..<3).scalars, alone.scalars)
    }

    /// Known latents (the reference DDIM's mask and x0): entries with keep = 1 end at the known
    /// value and steer the rest through the denoiser; keep = 0 everywhere changes nothing.
    func testKnownLatentsAreHeldAndSteerTheRest() throws {
        let sampler = try DDIMSampler(schedule: schedule, steps: 10, eta: 0)
        let xT = randn([2, 1, 2, 2], seed: 3), known = randn([2, 1, 2, 2], seed: 4)
        var keepScalars = [Float](repeating: 0, count: 8)
        keepScalars[0] = 1; keepScalars[1] = 1; keepScalars[5] = 1
        let keep = Tensor(shape: [2, 1, 2, 2], scalars: keepScalars)
        // A denoiser that mixes the entries, so the held ones influence the others.
        let mixing: DenoiserOutput = { x, t in
            let mean = x.scalars.reduce(0, +) / Float(x.count)
            return (x * 0.5).map { Foundation.tanh($0 + mean) }
        }
        var g = [RandomGenerator(seed: 1), RandomGenerator(seed: 2)]
        let held = ReverseDiffusion.sample(sampler, from: xT, parameterization: .eps, generators: &g, model: mixing,
                                           known: KnownLatents(latents: known, keep: keep))
        for i in [0, 1, 5] { XCTAssertEqual(held.scalars[i], known.scalars[i], "entry \(i) is held") }
        g = [RandomGenerator(seed: 1), RandomGenerator(seed: 2)]
        let free = ReverseDiffusion.sample(sampler, from: xT, parameterization: .eps, generators: &g, model: mixing)
        XCTAssertTrue(free.scalars.allSatisfy(\.isFinite) && held.scalars.allSatisfy(\.isFinite))
        XCTAssertGreaterThan(abs(free.scalars[2] - held.scalars[2]), 1e-4, "the held entries steer the free ones")
        g = [RandomGenerator(seed: 1), RandomGenerator(seed: 2)]
        let none = ReverseDiffusion.sample(sampler, from: xT, parameterization: .eps, generators: &g, model: mixing,
                                           known: KnownLatents(latents: known, keep: Tensor(shape: [2, 1, 2, 2], scalars: [Float](repeating: 0, count: 8))))
        XCTAssertEqual(none.scalars, free.scalars)
    }
}
