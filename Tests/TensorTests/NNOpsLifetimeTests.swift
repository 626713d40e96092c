import XCTest
@testable import Tensor

/// Backward closures must not keep their own output alive (the output owns the node).
final class NNOpsLifetimeTests: XCTestCase {
    func testRecordedOutputsAreFreed() {
        let x = randn([2, 4, 3], seed: 1), w = randn([4], seed: 2), b = randn([4], seed: 3)
        let lw = randn([3], seed: 4), lb = randn([3], seed: 5)
        for t in [x, w, b, lw, lb] { t.requiresGrad = true }
        var g = RandomGenerator(seed: 6)
        let ops: [(String, () -> Tensor)] = [
            ("groupNorm", { x.groupNorm(groups: 2, weight: w, bias: b, eps: 1e-6) }),
            ("groupNormSiLU", { x.groupNormSiLU(groups: 2, weight: w, bias: b, eps: 1e-6) }),
            ("layerNorm", { x.layerNorm(weight: lw, bias: lb) }),
            ("batchNorm", { x.batchNorm(weight: w, bias: b, runningMean: nil, runningVar: nil, training: true) }),
            ("silu", { x.silu() }), ("gelu", { x.gelu() }), ("softplus", { x.softplus() }),
            ("softmax", { x.softmax() }), ("logSoftmax", { x.logSoftmax(alongAxis: -1) }),
            ("geglu", { x.reshaped([2, 12]).geglu() }),
            ("attention", { Tensor.scaledDotProductAttention(query: x, key: x, value: x, heads: 3) }),
            ("dropout", { x.dropout(probability: 0.5, generator: &g, training: true) }),
            ("embedding", { Tensor.embedding(table: w.reshaped([2, 2]), indices: [1, 0]) }),
            ("expanded", { w.expanded(to: [3, 4]) }),
        ]
        for (name, op) in ops {
            weak var weakOutput: Tensor?
            do {
                let y = op()
                XCTAssertTrue(y.requiresGrad, name)
                weakOutput = y
            }
            XCTAssertNil(weakOutput, "\(name) output kept alive by its own backward closure")
        }
    }
}
