import XCTest
import CKernels
import Tensor
@testable import NN

final class ClippingTests: XCTestCase {
    func testClipScalesToMaxNormAndReturnsTotal() {
        let a = Tensor(zeros: [2], requiresGrad: true), b = Tensor(zeros: [1], requiresGrad: true)
        let c = Tensor(zeros: [1], requiresGrad: true)  // no gradient: ignored
        a.grad = Tensor(shape: [2], scalars: [3, 0])
        b.grad = Tensor(shape: [1], scalars: [4])
        let total = clipGradNorm([a, b, c], maxNorm: 1)
        XCTAssertEqual(total, 5)
        let coefficient: Float = 1 / (5 + 1e-6)
        XCTAssertEqual(a.grad!.scalars, [3 * coefficient, 0])
        XCTAssertEqual(b.grad!.scalars, [4 * coefficient])
        XCTAssertNil(c.grad)
    }

    func testNoClippingBelowMaxNorm() {
        let a = Tensor(zeros: [3], requiresGrad: true)
        a.grad = Tensor(shape: [3], scalars: [1, 2, 2])
        XCTAssertEqual(clipGradNorm([a], maxNorm: 10), 3)
        XCTAssertEqual(a.grad!.scalars, [1, 2, 2])
    }

    func testNormOfLargeTensorIsThreadCountIndependent() {
        let a = Tensor(zeros: [100_003], requiresGrad: true)
        a.grad = randn([100_003], seed: 5)
        var expected: Double = 0
        for x in a.grad!.scalars { expected += Double(x) * Double(x) }
        XCTAssertEqual(Double(clipGradNorm([a], maxNorm: 1e9)), expected.squareRoot(), accuracy: 1e-2)
        let saved = Parallel.threadCount
        defer { Parallel.threadCount = saved }
        Parallel.threadCount = 1
        let one = clipGradNorm([a], maxNorm: 1e9)
        Parallel.threadCount = 2
        XCTAssertEqual(clipGradNorm([a], maxNorm: 1e9).bitPattern, one.bitPattern)
    }

    func testSumOfSquaresKernelMatchesAPlainSumOnEveryTailLength() {
        let x = randn([4099], seed: 11).scalars
        for n in [0, 1, 7, 8, 9, 15, 16, 17, 4096, 4099] {
            var expected: Double = 0
            for v in x.prefix(n) { expected += Double(v) * Double(v) }
            let got = x.withUnsafeBufferPointer { ldm_sum_of_squares_f32($0.baseAddress!, Int64(n)) }
            XCTAssert(got.isFinite, "n = \(n): \(got)")
            XCTAssertEqual(got, expected, accuracy: 1e-12 * max(expected, 1), "n = \(n)")
        }
    }

    func testNonFiniteGradientGivesNonFiniteNorm() {
        for bad in [Float.nan, .infinity] {
            let a = Tensor(zeros: [21], requiresGrad: true)
            var values = [Float](repeating: 0.5, count: 21)
            values[19] = bad   // in the tail after the last full group of eight
            a.grad = Tensor(shape: [21], scalars: values)
            XCTAssertFalse(clipGradNorm([a], maxNorm: 1e9).isFinite, "\(bad)")
        }
    }
}

final class EMATests: XCTestCase {
    private final class Model: Module {
        let w = Tensor(zeros: [3], requiresGrad: true)
        let frozen = Tensor(zeros: [1])  // requiresGrad false: not tracked, as in LitEma
    }

    func testDecayScheduleOfLitEma() {
        let ema = ExponentialMovingAverage(model: Model(), decay: 0.9999)
        // min(decay, (1 + n) / (10 + n)) with n counting this update.
        XCTAssertEqual(ema.decay(afterUpdates: 1), 2.0 / 11.0)
        XCTAssertEqual(ema.decay(afterUpdates: 10), 11.0 / 20.0)
        XCTAssertEqual(ema.decay(afterUpdates: 1000), 1001.0 / 1010.0)
        XCTAssertEqual(ema.decay(afterUpdates: 100_000), 0.9999)
        XCTAssertEqual(ExponentialMovingAverage(model: Model(), decay: 0.99, usesUpdateCount: false).decay(afterUpdates: 1), 0.99)
    }

    func testReferenceShadowNames() {
        XCTAssertEqual(ExponentialMovingAverage.referenceShadowName(for: "model.diffusion_model.out.0.weight"),
                       "modeldiffusion_modelout0weight")
    }

    func testUpdatesFollowTheRecurrence() {
        let model = Model()
        let ema = ExponentialMovingAverage(model: model, decay: 0.9)
        XCTAssertEqual(ema.shadows.map { $0.0 }, ["w"])
        var expected: [Float] = [0, 0, 0]
        for n in 1...30 {
            model.w.assign(Tensor(shape: [3], scalars: [Float(n), -Float(n), 1]))
            ema.update(from: model)
            let oneMinusDecay = Float(1 - min(0.9, Double(1 + n) / Double(10 + n)))
            expected = zip(expected, model.w.scalars).map { s, p in s - oneMinusDecay * (s - p) }
        }
        XCTAssertEqual(ema.updateCount, 30)
        XCTAssertEqual(ema.stateDict()["w"]!.scalars, expected)
    }

    func testSwapForEvaluationAndStateRoundTrip() throws {
        let model = Model()
        let ema = ExponentialMovingAverage(model: model)
        model.w.assign(Tensor(shape: [3], scalars: [1, 2, 3]))
        ema.update(from: model)
        let averaged = ema.stateDict()["w"]!.scalars
        XCTAssertNotEqual(averaged, [1, 2, 3])
        let seen = ema.withAveragedWeights(in: model) { model.w.scalars }
        XCTAssertEqual(seen, averaged)
        XCTAssertEqual(model.w.scalars, [1, 2, 3], "trained weights restored")

        let other = ExponentialMovingAverage(model: Model())
        try other.load(stateDict: ema.stateDict().mapValues { $0.copy() }, updateCount: ema.updateCount)
        XCTAssertEqual(other.nextDecay, ema.nextDecay)
        XCTAssertEqual(other.stateDict()["w"]!.scalars, averaged)
        XCTAssertThrowsError(try other.load(stateDict: ["w": Tensor(zeros: [2])], updateCount: 0)) { e in
            XCTAssertTrue("\(e)".contains("w: expected [3], got [2]"), "\(e)")
        }
    }
}
