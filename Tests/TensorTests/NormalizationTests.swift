import XCTest
@testable import Tensor

final class NormalizationTests: XCTestCase {
    // MARK: naive references (plain loops, Double)

    /// GroupNorm over [N, C, S...] with biased variance, as PyTorch defines it.
    func naiveGroupNorm(_ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Double) -> Tensor {
        let xs = x.scalars, ws = weight?.scalars, bs = bias?.scalars
        let n = x.shape[0], c = x.shape[1], s = x.count / (n * c), cg = c / groups
        var out = [Float](repeating: 0, count: x.count)
        for i in 0..<n { for g in 0..<groups {
            var values: [Double] = []
            for ch in (g * cg)..<((g + 1) * cg) { for j in 0..<s { values.append(Double(xs[(i * c + ch) * s + j])) } }
            let mean = values.reduce(0, +) / Double(values.count)
            let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)
            for ch in (g * cg)..<((g + 1) * cg) { for j in 0..<s {
                let idx = (i * c + ch) * s + j
                let xhat = (Double(xs[idx]) - mean) / (variance + eps).squareRoot()
                out[idx] = Float(xhat * Double(ws?[ch] ?? 1) + Double(bs?[ch] ?? 0))
            } }
        } }
        return Tensor(shape: x.shape, scalars: out)
    }

    func naiveLayerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Double) -> Tensor {
        let xs = x.scalars, ws = weight?.scalars, bs = bias?.scalars
        let d = x.shape.last!, rows = x.count / d
        var out = [Float](repeating: 0, count: x.count)
        for r in 0..<rows {
            let row = (0..<d).map { Double(xs[r * d + $0]) }
            let mean = row.reduce(0, +) / Double(d)
            let variance = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(d)
            for j in 0..<d {
                let xhat = (row[j] - mean) / (variance + eps).squareRoot()
                out[r * d + j] = Float(xhat * Double(ws?[j] ?? 1) + Double(bs?[j] ?? 0))
            }
        }
        return Tensor(shape: x.shape, scalars: out)
    }

    /// Per-channel batch statistics over N and spatial positions: (mean, biased var).
    func naiveChannelStats(_ x: Tensor) -> [(Double, Double)] {
        let xs = x.scalars
        let n = x.shape[0], c = x.shape[1], s = x.count / (n * c)
        return (0..<c).map { ch in
            var values: [Double] = []
            for i in 0..<n { for j in 0..<s { values.append(Double(xs[(i * c + ch) * s + j])) } }
            let mean = values.reduce(0, +) / Double(values.count)
            return (mean, values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count))
        }
    }

    func naiveBatchNorm(_ x: Tensor, stats: [(Double, Double)], weight: Tensor?, bias: Tensor?, eps: Double) -> Tensor {
        let xs = x.scalars, ws = weight?.scalars, bs = bias?.scalars
        let n = x.shape[0], c = x.shape[1], s = x.count / (n * c)
        var out = [Float](repeating: 0, count: x.count)
        for i in 0..<n { for ch in 0..<c { for j in 0..<s {
            let idx = (i * c + ch) * s + j
            let xhat = (Double(xs[idx]) - stats[ch].0) / (stats[ch].1 + eps).squareRoot()
            out[idx] = Float(xhat * Double(ws?[ch] ?? 1) + Double(bs?[ch] ?? 0))
        } } }
        return Tensor(shape: x.shape, scalars: out)
    }

    // MARK: GroupNorm

    func testGroupNormMatchesNaive() {
        let w = randn([6], seed: 2), b = randn([6], seed: 3)
        for shape in [[2, 6, 3, 5], [3, 6], [1, 6, 37], [2, 6, 2, 3, 2]] {
            let x = randn(shape, seed: 1, scale: 2)
            assertClose(x.groupNorm(groups: 3, weight: w, bias: b, eps: 1e-6),
                        naiveGroupNorm(x, groups: 3, weight: w, bias: b, eps: 1e-6), atol: 2e-5)
            assertClose(x.groupNorm(groups: 2, weight: nil, bias: nil, eps: 1e-5),
                        naiveGroupNorm(x, groups: 2, weight: nil, bias: nil, eps: 1e-5), atol: 2e-5)
        }
    }

    func testGroupNormIsAccurateForLargeMeans() {
        // Small spread on a large offset: a one-pass Float E[x²] − E[x]² would lose it entirely,
        // and x·(1/σ) − μ/σ would cancel to a few bits.
        let x = randn([2, 4, 300], seed: 4, scale: 0.01) + 1000
        assertClose(x.groupNorm(groups: 2, weight: nil, bias: nil, eps: 1e-6),
                    naiveGroupNorm(x, groups: 2, weight: nil, bias: nil, eps: 1e-6), atol: 1e-4)
        assertClose(x.layerNorm(weight: nil, bias: nil, eps: 1e-6),
                    naiveLayerNorm(x, weight: nil, bias: nil, eps: 1e-6), atol: 1e-4)
        assertClose(x.batchNorm(weight: nil, bias: nil, runningMean: nil, runningVar: nil, training: true),
                    naiveBatchNorm(x, stats: naiveChannelStats(x), weight: nil, bias: nil, eps: 1e-5), atol: 1e-4)
    }

    func testGroupNormSiLUEqualsComposition() {
        let x = randn([2, 8, 5, 3], seed: 5, scale: 1.5) + 0.3, w = randn([8], seed: 6), b = randn([8], seed: 7)
        let fused = x.groupNormSiLU(groups: 4, weight: w, bias: b, eps: 1e-6)
        let reference = naiveGroupNorm(x, groups: 4, weight: w, bias: b, eps: 1e-6)
            .map { $0 / (1 + Foundation.exp(-$0)) }
        assertClose(fused, reference, atol: 2e-5)
        assertClose(fused, x.groupNorm(groups: 4, weight: w, bias: b, eps: 1e-6).silu(), atol: 1e-6)
    }

    func testGroupNormGradients() {
        let x = randn([2, 4, 3, 2], seed: 8), w = randn([4], seed: 9), b = randn([4], seed: 10)
        assertGradientsMatch([x, w, b]) { $0[0].groupNorm(groups: 2, weight: $0[1], bias: $0[2], eps: 1e-5) }
        assertGradientsMatch([x]) { $0[0].groupNorm(groups: 4, weight: nil, bias: nil, eps: 1e-5) }
        assertGradientsMatch([x, w]) { $0[0].groupNorm(groups: 1, weight: $0[1], bias: nil, eps: 1e-5) }
    }

    func testGroupNormSiLUGradients() {
        let x = randn([2, 4, 3, 2], seed: 11), w = randn([4], seed: 12), b = randn([4], seed: 13)
        assertGradientsMatch([x, w, b]) { $0[0].groupNormSiLU(groups: 2, weight: $0[1], bias: $0[2], eps: 1e-5) }
        assertGradientsMatch([x]) { $0[0].groupNormSiLU(groups: 2, weight: nil, bias: nil, eps: 1e-5) }
    }

    func testGroupNormWeightGradientsWithoutInputGradient() {
        // Only the affine parameters require gradients: the fused path must still produce them.
        let x = randn([2, 4, 6], seed: 14), w = randn([4], seed: 15), b = randn([4], seed: 16)
        w.requiresGrad = true; b.requiresGrad = true
        for fused in [false, true] {
            let y = fused ? x.groupNormSiLU(groups: 2, weight: w, bias: b, eps: 1e-6)
                          : x.groupNorm(groups: 2, weight: w, bias: b, eps: 1e-6)
            let x2 = x.copy(); x2.requiresGrad = true
            let y2 = fused ? x2.groupNormSiLU(groups: 2, weight: w, bias: b, eps: 1e-6)
                           : x2.groupNorm(groups: 2, weight: w, bias: b, eps: 1e-6)
            let seed = randn(y.shape, seed: 17)
            let g1 = gradients(of: y, wrt: [w, b], seed: seed), g2 = gradients(of: y2, wrt: [w, b], seed: seed)
            assertClose(g1[0]!, g2[0]!, atol: 1e-6); assertClose(g1[1]!, g2[1]!, atol: 1e-6)
        }
    }

    // MARK: LayerNorm

    func testLayerNormMatchesNaive() {
        let w = randn([37], seed: 21), b = randn([37], seed: 22)
        let x = randn([3, 5, 37], seed: 20, scale: 3) + 2
        assertClose(x.layerNorm(weight: w, bias: b), naiveLayerNorm(x, weight: w, bias: b, eps: 1e-5), atol: 2e-5)
        assertClose(x.layerNorm(weight: nil, bias: nil, eps: 1e-6),
                    naiveLayerNorm(x, weight: nil, bias: nil, eps: 1e-6), atol: 2e-5)
    }

    func testLayerNormGradients() {
        let x = randn([3, 2, 9], seed: 23), w = randn([9], seed: 24), b = randn([9], seed: 25)
        assertGradientsMatch([x, w, b]) { $0[0].layerNorm(weight: $0[1], bias: $0[2]) }
        assertGradientsMatch([x]) { $0[0].layerNorm(weight: nil, bias: nil) }
    }

    func testLayerNormAffineGradientsAcrossRowBlocks() {
        // More rows than one reduction block, so the block partials are combined.
        let x = randn([150, 5], seed: 26), w = randn([5], seed: 27), b = randn([5], seed: 28)
        w.requiresGrad = true; b.requiresGrad = true
        let g = randn([150, 5], seed: 29)
        let grads = gradients(of: x.layerNorm(weight: w, bias: b), wrt: [w, b], seed: g)
        let xhs = naiveLayerNorm(x, weight: nil, bias: nil, eps: 1e-5).scalars, gs = g.scalars
        var dw = [Float](repeating: 0, count: 5), db = [Float](repeating: 0, count: 5)
        for r in 0..<150 { for j in 0..<5 {
            dw[j] += gs[r * 5 + j] * xhs[r * 5 + j]; db[j] += gs[r * 5 + j]
        } }
        assertClose(grads[0]!, Tensor(shape: [5], scalars: dw), atol: 1e-4)
        assertClose(grads[1]!, Tensor(shape: [5], scalars: db), atol: 1e-4)
    }

    // MARK: BatchNorm

    func testBatchNormTrainingMatchesNaiveAndUpdatesRunningStats() {
        let x = randn([4, 3, 2, 5], seed: 30, scale: 2) + 1, w = randn([3], seed: 31), b = randn([3], seed: 32)
        let runningMean = Tensor(shape: [3], scalars: [0.5, -1, 2]), runningVar = Tensor(shape: [3], scalars: [1, 2, 0.5])
        let y = x.batchNorm(weight: w, bias: b, runningMean: runningMean, runningVar: runningVar,
                            training: true, momentum: 0.2, eps: 1e-5)
        let stats = naiveChannelStats(x)
        assertClose(y, naiveBatchNorm(x, stats: stats, weight: w, bias: b, eps: 1e-5), atol: 2e-5)
        // PyTorch: running = (1 − momentum)·running + momentum·batch, variance unbiased.
        let m = Double(4 * 10)
        let expectedMean = zip([0.5, -1, 2] as [Double], stats).map { Float(0.8 * $0 + 0.2 * $1.0) }
        let expectedVar = zip([1, 2, 0.5] as [Double], stats).map { Float(0.8 * $0 + 0.2 * $1.1 * m / (m - 1)) }
        assertClose(runningMean, Tensor(shape: [3], scalars: expectedMean), atol: 1e-6)
        assertClose(runningVar, Tensor(shape: [3], scalars: expectedVar), atol: 1e-6)
    }

    func testBatchNormEvalUsesRunningStats() {
        let x = randn([2, 3, 4], seed: 33), w = randn([3], seed: 34), b = randn([3], seed: 35)
        let runningMean = Tensor(shape: [3], scalars: [0.5, -1, 2]), runningVar = Tensor(shape: [3], scalars: [1, 2, 0.5])
        let y = x.batchNorm(weight: w, bias: b, runningMean: runningMean, runningVar: runningVar, training: false)
        assertClose(y, naiveBatchNorm(x, stats: [(0.5, 1), (-1, 2), (2, 0.5)], weight: w, bias: b, eps: 1e-5), atol: 2e-5)
        XCTAssertEqual(runningMean.scalars, [0.5, -1, 2])
        XCTAssertEqual(runningVar.scalars, [1, 2, 0.5])
        // Without running statistics, evaluation normalises with the batch (as PyTorch).
        assertClose(x.batchNorm(weight: nil, bias: nil, runningMean: nil, runningVar: nil, training: false),
                    naiveBatchNorm(x, stats: naiveChannelStats(x), weight: nil, bias: nil, eps: 1e-5), atol: 2e-5)
    }

    func testBatchNormGradients() {
        let x = randn([3, 2, 4], seed: 36), w = randn([2], seed: 37), b = randn([2], seed: 38)
        assertGradientsMatch([x, w, b]) {
            $0[0].batchNorm(weight: $0[1], bias: $0[2], runningMean: nil, runningVar: nil, training: true)
        }
        let runningMean = Tensor(shape: [2], scalars: [0.1, -0.2]), runningVar = Tensor(shape: [2], scalars: [0.7, 1.3])
        assertGradientsMatch([x, w, b]) {
            $0[0].batchNorm(weight: $0[1], bias: $0[2], runningMean: runningMean, runningVar: runningVar, training: false)
        }
    }
}
