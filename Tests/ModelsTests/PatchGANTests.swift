import XCTest
@testable import Models
import NN
import Tensor

/// The NLayerDiscriminator of taming-transformers: layout, keys, initialisation, gradient.
final class PatchGANTests: XCTestCase {
    func testOutputShape() {
        var g = RandomGenerator(seed: 70)
        let d = PatchDiscriminator(inChannels: 3, baseChannels: 8, generator: &g)
        // 32 → 16 → 8 → 4 (stride 2) → 3 → 2 (stride 1, kernel 4, padding 1).
        XCTAssertEqual(withoutGrad { d(randn([2, 3, 32, 32])) }.shape, [2, 1, 2, 2])
        XCTAssertEqual(withoutGrad { d(randn([1, 3, 64, 48])) }.shape, [1, 1, 6, 4])
    }

    func testKeysMatchTaming() {
        var g = RandomGenerator(seed: 71)
        let d = PatchDiscriminator(inChannels: 3, generator: &g)
        var expected: [String: [Int]] = [
            "main.0.weight": [64, 3, 4, 4], "main.0.bias": [64],
            "main.2.weight": [128, 64, 4, 4], "main.5.weight": [256, 128, 4, 4], "main.8.weight": [512, 256, 4, 4],
            "main.11.weight": [1, 512, 4, 4], "main.11.bias": [1],
        ]
        for (i, c) in [(3, 128), (6, 256), (9, 512)] {
            for name in ["weight", "bias", "running_mean", "running_var"] { expected["main.\(i).\(name)"] = [c] }
            expected["main.\(i).num_batches_tracked"] = []
        }
        let state = d.stateDict()
        XCTAssertEqual(Set(state.keys), Set(expected.keys), "convs before BatchNorm have no bias; LeakyReLUs have no keys")
        for (key, shape) in expected { XCTAssertEqual(state[key]?.shape, shape, key) }
        XCTAssertEqual(Set(d.namedBuffers().map(\.0)), Set(expected.keys.filter { $0.contains("running") || $0.contains("num_batches") }))
    }

    func testInitialisationStatistics() {
        var g = RandomGenerator(seed: 72)
        let d = PatchDiscriminator(inChannels: 3, generator: &g)
        let state = d.stateDict()
        func stats(_ keys: [String]) -> (mean: Double, std: Double, count: Int) {
            let values = keys.flatMap { state[$0]!.scalars.map(Double.init) }
            let mean = values.reduce(0, +) / Double(values.count)
            let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)
            return (mean, variance.squareRoot(), values.count)
        }
        let conv = stats(["main.0.weight", "main.2.weight", "main.5.weight", "main.8.weight", "main.11.weight"])
        XCTAssertEqual(conv.mean, 0, accuracy: 1e-4)
        XCTAssertEqual(conv.std, 0.02, accuracy: 1e-4)
        let bnWeight = stats(["main.3.weight", "main.6.weight", "main.9.weight"])
        XCTAssertEqual(bnWeight.mean, 1, accuracy: 0.003)
        XCTAssertEqual(bnWeight.std, 0.02, accuracy: 0.002)
        for i in [3, 6, 9] {
            XCTAssertEqual(state["main.\(i).bias"]!.abs().sum().item, 0, "BatchNorm bias starts at 0")
            XCTAssertEqual(state["main.\(i).running_mean"]!.abs().sum().item, 0)
            XCTAssertEqual(state["main.\(i).running_var"]!.mean().item, 1)
        }
        // taming's weights_init leaves conv biases at PyTorch's default U(±1/√fan_in).
        XCTAssertLessThanOrEqual(state["main.0.bias"]!.abs().maxValue(), 1 / Float(48).squareRoot())
    }

    func testGradientWithRespectToInput() {
        var g = RandomGenerator(seed: 73)
        let d = PatchDiscriminator(inChannels: 3, baseChannels: 8, generator: &g)
        let x = randn([2, 3, 32, 32], seed: 74)
        // Training mode: BatchNorm with batch statistics couples the two images.
        assertGradientsMatch([x], epsilon: 1e-2, atol: 1e-3, maxElements: 32) { xs in d(xs[0]) }
        // Its weight gradients are compared with PyTorch instead (AutoencoderLossReferenceTests):
        // a Float32 difference quotient over 0.02-scale weights, LeakyReLU kinks and batch
        // statistics of 2×2 patches is too noisy to check them at a useful tolerance.
    }
}
