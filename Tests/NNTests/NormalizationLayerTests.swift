import XCTest
import Tensor
@testable import NN

final class NormalizationLayerTests: XCTestCase {
    func testGroupNormDefaultsAndGradients() {
        let norm = GroupNorm(groups: 2, channels: 4, eps: 1e-6)
        XCTAssertEqual(norm.weight!.scalars, [1, 1, 1, 1])
        XCTAssertEqual(norm.bias!.scalars, [0, 0, 0, 0])
        XCTAssertEqual(norm.namedParameters().map { $0.0 }, ["weight", "bias"])
        // Non-trivial affine parameters so their gradients are exercised.
        norm.weight!.assign(randn([4], seed: 1))
        norm.bias!.assign(randn([4], seed: 2))
        let x = randn([2, 4, 3, 3], seed: 3)
        assertGradientsMatch([x, norm.weight!, norm.bias!]) { _ in norm(x) }
        assertGradientsMatch([x, norm.weight!, norm.bias!]) { _ in norm.applyingSiLU(x) }
        XCTAssertTrue(GroupNorm(groups: 2, channels: 4, affine: false).namedParameters().isEmpty)
    }

    func testGroupNormNormalisesEachGroup() {
        let y = GroupNorm(groups: 2, channels: 4)(randn([1, 4, 2, 2], seed: 4, scale: 3))
        for group in 0..<2 {
            let values = Array(y.scalars[(group * 8)..<(group * 8 + 8)]).map(Double.init)
            let mean = values.reduce(0, +) / 8
            let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 8
            XCTAssertEqual(mean, 0, accuracy: 1e-5)
            XCTAssertEqual(variance, 1, accuracy: 1e-3)
        }
    }

    func testLayerNormDefaultsAndGradients() {
        let norm = LayerNorm(5)
        XCTAssertEqual(norm.weight!.scalars, [1, 1, 1, 1, 1])
        norm.weight!.assign(randn([5], seed: 5))
        norm.bias!.assign(randn([5], seed: 6))
        let x = randn([2, 3, 5], seed: 7)
        XCTAssertEqual(norm(x).shape, [2, 3, 5])
        assertGradientsMatch([x, norm.weight!, norm.bias!]) { _ in norm(x) }
    }

    func testBatchNorm2dStateMatchesTorchLayout() {
        let bn = BatchNorm2d(3)
        XCTAssertEqual(bn.orderedStateDict().map { $0.0 },
                       ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"])
        XCTAssertEqual(bn.namedParameters().map { $0.0 }, ["weight", "bias"])
        XCTAssertEqual(bn.runningVar.scalars, [1, 1, 1])
        XCTAssertEqual(bn.numBatchesTracked.shape, [])
    }

    func testBatchNorm2dTrainingUpdatesRunningStatisticsAndEvalUsesThem() {
        let bn = BatchNorm2d(2, momentum: 0.1)
        let x = randn([4, 2, 3, 3], seed: 8, scale: 2) + 1
        _ = bn(x)
        XCTAssertEqual(bn.numBatchesTracked.item, 1)
        // running = 0.9·running + 0.1·batch statistic (unbiased variance), per channel.
        for c in 0..<2 {
            var values: [Double] = []
            for n in 0..<4 { for i in 0..<9 { values.append(Double(x.pointer[(n * 2 + c) * 9 + i])) } }
            let mean = values.reduce(0, +) / 36
            let unbiased = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 35
            XCTAssertEqual(Double(bn.runningMean.pointer[c]), 0.1 * mean, accuracy: 1e-5)
            XCTAssertEqual(Double(bn.runningVar.pointer[c]), 0.9 + 0.1 * unbiased, accuracy: 1e-4)
        }
        bn.eval()
        let before = bn.runningMean.scalars
        let y = bn(x)
        XCTAssertEqual(bn.runningMean.scalars, before, "evaluation must not move running statistics")
        XCTAssertEqual(bn.numBatchesTracked.item, 1)
        let c0 = (x.pointer[0] - bn.runningMean.pointer[0]) / (bn.runningVar.pointer[0] + 1e-5).squareRoot()
        XCTAssertEqual(y.pointer[0], c0, accuracy: 1e-5)
    }

    func testBatchNorm2dGradients() {
        let bn = BatchNorm2d(2)
        bn.weight.assign(randn([2], seed: 9))
        bn.bias.assign(randn([2], seed: 10))
        let x = randn([3, 2, 2, 2], seed: 11)
        assertGradientsMatch([x, bn.weight, bn.bias]) { _ in bn(x) }
        bn.eval()
        assertGradientsMatch([x, bn.weight, bn.bias]) { _ in bn(x) }
    }
}

final class EmbeddingDropoutTests: XCTestCase {
    func testEmbeddingInitialisationAndGradients() {
        var g = RandomGenerator(seed: 12)
        let big = Embedding(1000, 64, generator: &g)
        let n = Double(big.weight.count)
        let mean = big.weight.sumAsDouble() / n
        let variance = big.weight.scalars.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / n
        XCTAssertEqual(mean, 0, accuracy: 0.02)
        XCTAssertEqual(variance, 1, accuracy: 0.03)

        let e = Embedding(5, 3, generator: &g)
        let rows = e([4, 0, 4])
        XCTAssertEqual(rows.shape, [3, 3])
        XCTAssertEqual(Array(rows.scalars[0..<3]), Array(e.weight.scalars[12..<15]))
        assertGradientsMatch([e.weight]) { _ in e([4, 0, 4, 2]) }
    }

    func testDropoutFollowsModeAndGenerator() {
        let dropout = Dropout(0.25)
        let x = Tensor(repeating: 1, shape: [10_000])
        var g1 = RandomGenerator(seed: 13), g2 = RandomGenerator(seed: 13)
        let a = dropout(x, generator: &g1), b = dropout(x, generator: &g2)
        XCTAssertEqual(a.scalars, b.scalars, "the same generator state gives the same mask")
        let dropped = a.scalars.filter { $0 == 0 }.count
        XCTAssertEqual(Double(dropped) / 10_000, 0.25, accuracy: 0.02)
        XCTAssertTrue(a.scalars.allSatisfy { $0 == 0 || abs($0 - 1 / 0.75) < 1e-6 })
        dropout.eval()
        XCTAssertEqual(dropout(x, generator: &g1).scalars, x.scalars)
    }
}
