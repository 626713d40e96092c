import XCTest
import Tensor
@testable import NN

/// Adam.clipAndStep against clip_grad_norm_, step() and the EMA update made one after the
/// other (the reference's order): the same bits for parameters, moments and shadows.
final class ClippedStepTests: XCTestCase {
    private final class Model: Module {
        let w = Tensor(zeros: [5, 7], requiresGrad: true)
        let b = Tensor(zeros: [7], requiresGrad: true)
        let unused = Tensor(zeros: [3], requiresGrad: true)  // never gets a gradient
        let frozen = Tensor(zeros: [2])                        // not trained, not averaged
    }

    private func makeRun(seed: UInt64) -> (Model, AdamW, ExponentialMovingAverage) {
        let model = Model()
        var g = RandomGenerator(seed: seed)
        for p in [model.w, model.b, model.unused, model.frozen] { p.assign(Tensor.randomNormal(p.shape, generator: &g)) }
        return (model, AdamW(parameters: model.namedParameters(), lr: 1e-2), ExponentialMovingAverage(model: model, decay: 0.99))
    }

    private func state(_ model: Model, _ optimizer: Adam, _ ema: ExponentialMovingAverage) -> [String: [UInt32]] {
        var all: [String: [UInt32]] = [:]
        for (name, t) in model.namedParameters() { all["param." + name] = t.scalars.map(\.bitPattern) }
        for (name, t) in optimizer.stateDict() { all["adam." + name] = t.scalars.map(\.bitPattern) }
        for (name, t) in ema.stateDict() { all["ema." + name] = t.scalars.map(\.bitPattern) }
        return all
    }

    func testEqualsClipThenStepThenAverage() {
        for maxNorm: Float in [0.5, 1e6, .infinity] {   // clipping, and a norm below the limit
            let (fusedModel, fusedOptimizer, fusedEMA) = makeRun(seed: 3)
            let (model, optimizer, ema) = makeRun(seed: 3)
            var g = RandomGenerator(seed: 9)
            for _ in 0..<4 {
                let gw = Tensor.randomNormal([5, 7], std: 2, generator: &g), gb = Tensor.randomNormal([7], generator: &g)
                fusedModel.w.grad = gw.copy(); fusedModel.b.grad = gb.copy()
                model.w.grad = gw.copy(); model.b.grad = gb.copy()

                let fusedNorm = fusedOptimizer.clipAndStep(maxNorm: maxNorm, averaging: fusedEMA, of: fusedModel)
                fusedOptimizer.zeroGrad()
                let norm = clipGradNorm(model.parameters(), maxNorm: maxNorm)
                optimizer.step()
                optimizer.zeroGrad()
                ema.update(from: model)

                XCTAssertTrue(norm.isFinite && norm > 0, "\(norm)")
                XCTAssertEqual(fusedNorm.bitPattern, norm.bitPattern, "max norm \(maxNorm)")
            }
            let expected = state(model, optimizer, ema), got = state(fusedModel, fusedOptimizer, fusedEMA)
            XCTAssertEqual(Set(got.keys), Set(expected.keys))
            for (key, bits) in expected {
                XCTAssertTrue(bits.allSatisfy { Float(bitPattern: $0).isFinite }, key)
                XCTAssertEqual(got[key], bits, "max norm \(maxNorm): \(key)")
            }
            // The parameter without a gradient was not stepped (its shadow is compared above).
            XCTAssertNil(fusedOptimizer.stepCounts()["unused"])
            XCTAssertEqual(fusedEMA.updateCount, 4)
        }
    }

    func testWithoutAnEMAAndWithANonFiniteGradient() {
        let (model, optimizer, _) = makeRun(seed: 4)
        model.w.grad = Tensor(zeros: [5, 7])
        model.b.grad = Tensor(shape: [7], scalars: [1, 2, .nan, 4, 5, 6, 7])
        XCTAssertTrue(optimizer.clipAndStep(maxNorm: 1).isNaN, "a NaN gradient gives a NaN norm, for the trainer to see")
    }

    /// The EMA keeps each shadow's parameter for the model it last saw; another model with the
    /// same names is averaged from its own values.
    func testAveragingFromAnotherModelReadsThatModel() {
        let (model, _, ema) = makeRun(seed: 5)
        ema.update(from: model)
        let (other, _, _) = makeRun(seed: 6)
        let before = ema.stateDict()["b"]!.scalars
        ema.update(from: other)
        let w = Float(1 - ema.decay(afterUpdates: 2))
        let expected = zip(before, other.b.scalars).map { s, p in s - w * (s - p) }
        XCTAssertEqual(ema.stateDict()["b"]!.scalars.map(\.bitPattern), expected.map(\.bitPattern))
    }
}
