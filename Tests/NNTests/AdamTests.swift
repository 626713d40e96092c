import XCTest
import Tensor
@testable import NN

/// Adam and AdamW against torch.optim trajectories (Tests/Fixtures/generate_adam_fixture.py).
final class AdamTests: XCTestCase {
    struct Fixture: Decodable {
        struct Case: Decodable {
            let name: String, decoupled: Bool, seed: Int
            let lr: String, lr_scale: [String], beta1: String, beta2: String, eps: String, weight_decay: String
            let `init`: [[String]], grads: [[[String]]], final64: [[String]], final32: [[String]]
            let exp_avg32: [[String]], exp_avg_sq32: [[String]], steps32: [Int]
        }
        let shapes: [[Int]], steps: Int, skip: [Int], cases: [Case]
    }

    func loadFixture() throws -> Fixture {
        try JSONDecoder().decode(Fixture.self, from: fixtureData("adam.json"))
    }

    func hyper(_ c: Fixture.Case, step k: Int) -> AdamHyperparameters {
        AdamHyperparameters(learningRate: Double(c.lr)! * Double(c.lr_scale[k])!, beta1: Double(c.beta1)!,
                            beta2: Double(c.beta2)!, eps: Double(c.eps)!, weightDecay: Double(c.weight_decay)!,
                            decoupledWeightDecay: c.decoupled)
    }

    /// The generic kernel in Double reproduces torch float64 exactly (==), skip included.
    func testDoubleKernelIsBitIdenticalToTorchFloat64() throws {
        let fx = try loadFixture()
        XCTAssertEqual(fx.cases.map(\.name), ["adam", "adam_weight_decay", "adamw"])
        for c in fx.cases {
            var params = c.`init`.map(hexDoubles)
            var m = params.map { [Double](repeating: 0, count: $0.count) }
            var v = m
            var steps = [Int](repeating: 0, count: params.count)
            for k in 0..<fx.steps {
                for i in params.indices where [i, k] != fx.skip {
                    let g = hexDoubles(c.grads[k][i])
                    steps[i] += 1
                    let n = params[i].count
                    params[i].withUnsafeMutableBufferPointer { p in
                        m[i].withUnsafeMutableBufferPointer { mp in
                            v[i].withUnsafeMutableBufferPointer { vp in
                                g.withUnsafeBufferPointer { gp in
                                    AdamKernel.update(parameter: p.baseAddress!, gradient: gp.baseAddress!,
                                                      expAvg: mp.baseAddress!, expAvgSq: vp.baseAddress!,
                                                      count: n, step: steps[i], hyper: hyper(c, step: k))
                                }
                            }
                        }
                    }
                }
            }
            for i in params.indices {
                let expected = hexDoubles(c.final64[i])
                let firstDiff = zip(params[i], expected).enumerated().first { $0.element.0 != $0.element.1 }
                XCTAssertNil(firstDiff, "\(c.name) parameter \(i): first difference \(String(describing: firstDiff))")
            }
        }
    }

    /// The Float path through the Adam/AdamW classes (named parameters, lr set per step,
    /// a parameter without gradient skipped) stays within 1e-6 of torch float32.
    func testFloatOptimizerMatchesTorchFloat32() throws {
        let fx = try loadFixture()
        for c in fx.cases {
            let params = zip(fx.shapes, c.`init`).map { shape, values in
                Tensor(shape: shape, scalars: hexDoubles(values).map { Float($0) }, requiresGrad: true)
            }
            let named = params.enumerated().map { ("p\($0.offset)", $0.element) }
            let h = hyper(c, step: 0)
            let optimizer: Adam = c.decoupled
                ? AdamW(parameters: named, lr: h.learningRate, betas: (h.beta1, h.beta2), eps: h.eps, weightDecay: h.weightDecay)
                : Adam(parameters: named, lr: h.learningRate, betas: (h.beta1, h.beta2), eps: h.eps, weightDecay: h.weightDecay)
            XCTAssertEqual(optimizer.hyperparameters.decoupledWeightDecay, c.decoupled)
            for k in 0..<fx.steps {
                optimizer.learningRate = hyper(c, step: k).learningRate
                for (i, p) in params.enumerated() {
                    p.grad = [i, k] == fx.skip ? nil
                        : Tensor(shape: p.shape, scalars: hexDoubles(c.grads[k][i]).map { Float($0) })
                }
                optimizer.step()
            }
            let state = optimizer.stateDict()
            for (i, p) in params.enumerated() {
                func expect(_ hex: [String]) -> Tensor { Tensor(shape: p.shape, scalars: hexDoubles(hex).map { Float($0) }) }
                assertClose(p, expect(c.final32[i]), atol: 1e-6, rtol: 0)
                assertClose(state["p\(i).exp_avg"]!, expect(c.exp_avg32[i]), atol: 1e-6, rtol: 0)
                assertClose(state["p\(i).exp_avg_sq"]!, expect(c.exp_avg_sq32[i]), atol: 1e-6, rtol: 0)
            }
            XCTAssertEqual(optimizer.stepCounts(), ["p0": c.steps32[0], "p1": c.steps32[1], "p2": c.steps32[2]])
        }
    }

    /// Saving the state after k steps and resuming in a fresh optimiser gives the same bits as
    /// running straight through.
    func testStateRoundTripResumesExactly() throws {
        func makeParams() -> [(String, Tensor)] {
            [("a.weight", randn([3, 4], seed: 1).asParameter()), ("a.bias", randn([4], seed: 2).asParameter())]
        }
        func setGrads(_ ps: [(String, Tensor)], step: Int) {
            for (j, (_, p)) in ps.enumerated() { p.grad = randn(p.shape, seed: UInt64(100 + 10 * step + j)) }
        }
        let straight = makeParams()
        let o1 = AdamW(parameters: straight, lr: 1e-2)
        for s in 0..<5 { setGrads(straight, step: s); o1.step() }

        let first = makeParams()
        let o2 = AdamW(parameters: first, lr: 1e-2)
        for s in 0..<2 { setGrads(first, step: s); o2.step() }
        let saved = o2.stateDict().mapValues { $0.copy() }, counts = o2.stepCounts()
        let resumed = makeParams()
        for ((_, r), (_, f)) in zip(resumed, first) { r.assign(f) }
        let o3 = AdamW(parameters: resumed, lr: 1e-2)
        try o3.load(stateDict: saved, stepCounts: counts)
        XCTAssertEqual(o3.stepCounts(), ["a.weight": 2, "a.bias": 2])
        for s in 2..<5 { setGrads(resumed, step: s); o3.step() }
        for ((_, a), (_, b)) in zip(straight, resumed) { XCTAssertEqual(a.scalars, b.scalars) }
    }

    func testLoadRejectsBadStateWithNames() {
        let p = Tensor(zeros: [2, 2], requiresGrad: true)
        let opt = Adam(parameters: [("w", p)])
        XCTAssertThrowsError(try opt.load(stateDict: ["w.exp_avg": Tensor(zeros: [4])], stepCounts: ["w": 1, "x": 3])) { e in
            let text = "\(e)"
            XCTAssertTrue(text.contains("w.exp_avg: expected [2, 2], got [4]"), text)
            XCTAssertTrue(text.contains("w.exp_avg_sq: missing"), text)
            XCTAssertTrue(text.contains("x: unexpected"), text)
        }
        XCTAssertTrue(opt.stepCounts().isEmpty, "a failed load must change nothing")
    }

    func testParametersWithoutGradientAreSkipped() {
        let a = Tensor(repeating: 1, shape: [3], requiresGrad: true)
        let b = Tensor(repeating: 1, shape: [3], requiresGrad: true)
        let opt = Adam(parameters: [("a", a), ("b", b)], lr: 0.1)
        a.grad = Tensor(repeating: 1, shape: [3])
        opt.step()
        XCTAssertEqual(b.scalars, [1, 1, 1])
        XCTAssertEqual(opt.stepCounts(), ["a": 1])
        // First Adam step moves by lr in the gradient's sign direction (m̂/√v̂ = 1).
        for x in a.scalars { XCTAssertEqual(x, 0.9, accuracy: 1e-6) }
    }
}
