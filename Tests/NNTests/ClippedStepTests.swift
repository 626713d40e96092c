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

    /// A weight update sharded over two ranks, simulated in one process: each replica steps
    /// its share with the norm of the summed per-parameter squares, then takes the other's
    /// share of weights and shadows. Both replicas end with the whole update's bits.
    func testShardsOfTheUpdateTogetherGiveTheWholeUpdatesBits() {
        for maxNorm: Float in [0.5, .infinity] {
            let (model, optimizer, ema) = makeRun(seed: 5)
            let replicas = [makeRun(seed: 5), makeRun(seed: 5)]
            let count = optimizer.parameters.count
            let shares = [0..<1, 1..<count]
            var g = RandomGenerator(seed: 11)
            for _ in 0..<3 {
                let gw = Tensor.randomNormal([5, 7], std: 2, generator: &g), gb = Tensor.randomNormal([7], generator: &g)
                model.w.grad = gw.copy(); model.b.grad = gb.copy()
                let norm = optimizer.clipAndStep(maxNorm: maxNorm, averaging: ema, of: model)
                optimizer.zeroGrad()

                var squares = [Double](repeating: 0, count: count)
                for ((m, o, _), share) in zip(replicas, shares) {
                    m.w.grad = gw.copy(); m.b.grad = gb.copy()
                    for (i, s) in o.squaredGradientNorms(share).enumerated() { squares[i] += s }
                }
                let shardedNorm = Adam.norm(ofSquares: squares)
                XCTAssertTrue(shardedNorm.isFinite && shardedNorm > 0, "\(shardedNorm)")
                XCTAssertEqual(shardedNorm.bitPattern, norm.bitPattern)
                for ((m, o, e), share) in zip(replicas, shares) {
                    o.clipAndStep(norm: shardedNorm, maxNorm: maxNorm, indices: share, averaging: e, of: m)
                    o.zeroGrad()
                }
                // The gather: each replica copies the other's share of weights and shadows.
                for (r, share) in shares.enumerated() {
                    let (from, to) = (replicas[r], replicas[1 - r])
                    for i in share {
                        let name = from.1.parameters[i].0
                        to.1.parameters[i].1.assign(from.1.parameters[i].1)
                        if let s = from.2.stateDict()[name] { to.2.stateDict()[name]!.assign(s) }
                    }
                }
            }
            let expected = state(model, optimizer, ema)
            for (r, (m, o, e)) in replicas.enumerated() {
                let got = state(m, o, e)
                for (key, bits) in expected where key.hasPrefix("param.") || key.hasPrefix("ema.") {
                    XCTAssertTrue(bits.allSatisfy { Float(bitPattern: $0).isFinite }, key)
                    XCTAssertEqual(got[key], bits, "max norm \(maxNorm), replica \(r): \(key)")
                }
                // Each replica's moments are the whole update's for its own share.
                for i in shares[r] {
                    let name = o.parameters[i].0
                    for suffix in [".exp_avg", ".exp_avg_sq"] where expected["adam." + name + suffix] != nil {
                        XCTAssertEqual(got["adam." + name + suffix], expected["adam." + name + suffix], "replica \(r): \(name + suffix)")
                    }
                }
                XCTAssertEqual(e.updateCount, 3)
            }
        }
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
