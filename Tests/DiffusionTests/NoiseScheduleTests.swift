import Checkpoint
import Diffusion
import Foundation
import Tensor
import XCTest

final class NoiseScheduleTests: XCTestCase {
    /// ᾱ against closed forms: Π(1 − β_t) with β from its formula, computed independently.
    func testAlphasCumprodOfEachScheduleAgainstClosedForm() {
        let T = 1000
        func product(_ beta: (Int) -> Double) -> [Double] {
            var p = 1.0
            return (0..<T).map { p *= 1 - beta($0); return p }
        }
        let lin = NoiseSchedule(.linear, timesteps: T, linearStart: 0.0015, linearEnd: 0.0195)
        let s0 = 0.0015.squareRoot(), s1 = 0.0195.squareRoot()
        let expectedLin = product { let r = s0 + (s1 - s0) * Double($0) / 999; return r * r }
        for t in [0, 1, 500, 999] { XCTAssertEqual(lin.alphasCumprod[t], expectedLin[t], accuracy: 1e-12) }
        XCTAssertEqual(lin.betas[0], 0.0015, accuracy: 1e-15)
        XCTAssertEqual(lin.betas[999], 0.0195, accuracy: 1e-15)
        XCTAssertEqual(NoiseSchedule(.scaledLinear, timesteps: T, linearStart: 0.0015, linearEnd: 0.0195).alphasCumprod, lin.alphasCumprod)

        let ddpm = NoiseSchedule(.sqrtLinear, timesteps: T, linearStart: 1e-4, linearEnd: 0.02)
        let expectedDDPM = product { 1e-4 + (0.02 - 1e-4) * Double($0) / 999 }
        for t in [0, 10, 999] { XCTAssertEqual(ddpm.alphasCumprod[t], expectedDDPM[t], accuracy: 1e-12) }

        // Cosine: ᾱ_t = f(t + 1)/f(0) while no β is clipped (clipping starts near t = T).
        let cosine = NoiseSchedule(.cosine, timesteps: T)
        func f(_ t: Double) -> Double { let x = (t / Double(T) + 0.008) / 1.008 * Double.pi / 2; return cos(x) * cos(x) }
        for t in [0, 100, 500, 900] { XCTAssertEqual(cosine.alphasCumprod[t], f(Double(t + 1)) / f(0), accuracy: 1e-12) }
        XCTAssertEqual(cosine.betas.max()!, 0.999, accuracy: 1e-12)
        XCTAssertEqual(lin.alphasCumprodPrevious[0], 1)
    }

    /// Every schedule kind and the DDIM parameters against the reference's own functions.
    func testSchedulesAndDDIMParametersMatchTheReference() throws {
        let file = try SafeTensors.read(fixtureURL("schedules_ddim.safetensors"))
        let cases: [(String, NoiseSchedule)] = [
            ("linear_0.0015_0.0195", NoiseSchedule(.linear, linearStart: 0.0015, linearEnd: 0.0195)),
            ("linear_0.00085_0.012", NoiseSchedule(.linear, linearStart: 0.00085, linearEnd: 0.012)),
            ("linear_0.0001_0.02", NoiseSchedule(.linear, linearStart: 1e-4, linearEnd: 0.02)),
            ("sqrt_linear_0.0001_0.02", NoiseSchedule(.sqrtLinear, linearStart: 1e-4, linearEnd: 0.02)),
            ("sqrt_0.0001_0.02", NoiseSchedule(.sqrt, linearStart: 1e-4, linearEnd: 0.02)),
            ("cosine_0.008", NoiseSchedule(.cosine, cosineS: 0.008)),
        ]
        for (name, schedule) in cases {
            let betas = try file.tensor(named: "betas.\(name)").scalars
            let abar = try file.tensor(named: "alphas_cumprod.\(name)").scalars
            for t in 0..<1000 {
                XCTAssertEqual(Float(schedule.betas[t]), betas[t], accuracy: 1e-6 * max(1, betas[t]), "\(name) β_\(t)")
                // Relative: the sqrt schedule's ᾱ falls to ~1e-44.
                XCTAssertEqual(Double(abar[t]), schedule.alphasCumprod[t], accuracy: 1e-5 * schedule.alphasCumprod[t] + 1e-37, "\(name) ᾱ_\(t)")
            }
        }
        let lin = cases[0].1
        for (key, steps, eta) in [("S50_eta0", 50, 0.0), ("S50_eta1", 50, 1.0), ("S10_eta0.5", 10, 0.5)] {
            let ddim = try DDIMSampler(schedule: lin, steps: steps, eta: eta)
            XCTAssertEqual(ddim.ascendingSteps, try file.tensor(named: "ddim.\(key).timesteps").scalars.map { Int($0) }, key)
            for (ours, field) in [(ddim.alphas, "alphas"), (ddim.alphasPrevious, "alphas_prev"), (ddim.sigmas, "sigmas")] {
                let reference = try file.tensor(named: "ddim.\(key).\(field)").scalars
                XCTAssertEqual(ours.count, reference.count, "\(key).\(field)")
                for (a, b) in zip(ours, reference) { XCTAssertEqual(Float(a), b, accuracy: 1e-6, "\(key).\(field)") }
            }
        }
    }

    func testQSampleHasTheForwardProcessStatistics() {
        let schedule = NoiseSchedule(.linear, linearStart: 0.0015, linearEnd: 0.0195)
        let n = 40_000
        let start = Tensor(repeating: 0.7, shape: [4, n])
        var g = RandomGenerator(seed: 1)
        let noise = Tensor.randomNormal([4, n], generator: &g)
        let t = [0, 250, 600, 999]
        let zt = schedule.qSample(start, timesteps: t, noise: noise)
        for (row, step) in t.enumerated() {
            let values = Array(zt.buffer[(row * n)..<((row + 1) * n)]).map(Double.init)
            let mean = values.reduce(0, +) / Double(n)
            let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(n - 1)
            let abar = schedule.alphasCumprod[step]
            XCTAssertEqual(mean, 0.7 * abar.squareRoot(), accuracy: 4 * (1 - abar).squareRoot() / Double(n).squareRoot() + 1e-6)
            XCTAssertEqual(variance, 1 - abar, accuracy: 0.03 * (1 - abar))
        }
    }

    func testVPredictionConvertsBackToNoiseAndStart() {
        let schedule = NoiseSchedule(.cosine, timesteps: 100)
        let x0 = randn([3, 2, 2, 2], seed: 2), eps = randn([3, 2, 2, 2], seed: 3)
        let t = [0, 50, 99]
        let xt = schedule.qSample(x0, timesteps: t, noise: eps)
        let v = schedule.target(.v, start: x0, noise: eps, timesteps: t)
        let recovered = schedule.prediction(v, parameterization: .v, noisy: xt, timesteps: t)
        assertClose(recovered.eps, eps, atol: 1e-4, rtol: 1e-4)
        assertClose(recovered.start, x0, atol: 1e-4, rtol: 1e-4)
        let fromEps = schedule.prediction(eps, parameterization: .eps, noisy: xt, timesteps: t)
        assertClose(fromEps.start, x0, atol: 2e-3, rtol: 1e-3)
    }

    func testTrainingDrawsOfRankSlicesEqualOneProcessDraws() {
        let one = { () -> TrainingDraws in
            var g = RandomGenerator(seed: 9)
            return TrainingDraws.draw(globalBatch: 6, sampleShape: [2, 3], slice: (0, 1), timesteps: 1000,
                                      dropProbability: 0.5, generator: &g)
        }()
        var parts: [TrainingDraws] = []
        for rank in 0..<3 {
            var g = RandomGenerator(seed: 9)
            parts.append(TrainingDraws.draw(globalBatch: 6, sampleShape: [2, 3], slice: (rank, 3), timesteps: 1000,
                                            dropProbability: 0.5, generator: &g))
        }
        XCTAssertEqual(parts.flatMap(\.timesteps), one.timesteps)
        XCTAssertEqual(parts.flatMap(\.dropCondition), one.dropCondition)
        XCTAssertEqual(Tensor.concatenate(parts.map(\.noise), alongAxis: 0).scalars, one.noise.scalars)
        XCTAssertTrue(one.timesteps.allSatisfy { (0..<1000).contains($0) })
    }
}
