import XCTest
@testable import Models
import NN
import Tensor

/// LPIPS with the pretrained VGG16 + v0.1 heads against Tests/Fixtures/lpips_reference.py
/// (float64 PyTorch), and its gradient.
final class LPIPSTests: XCTestCase {
    /// The images of lpips_reference.images(): 32×32, values in [−1, 1].
    enum Pattern { case hramp, vramp, zeros, half, checker }

    func image(_ p: Pattern, channels: Int = 3) -> Tensor {
        var values = [Float](repeating: 0, count: channels * 32 * 32)
        for c in 0..<channels {
            for h in 0..<32 {
                for w in 0..<32 {
                    let v: Float
                    switch p {
                    case .hramp: v = -1 + 2 * Float(w) / 31
                    case .vramp: v = -1 + 2 * Float(h) / 31
                    case .zeros: v = 0
                    case .half: v = 0.5
                    case .checker: v = Float(((h / 4) + (w / 4)) % 2) * 2 - 1
                    }
                    values[(c * 32 + h) * 32 + w] = v
                }
            }
        }
        return Tensor(shape: [1, channels, 32, 32], scalars: values)
    }

    func testPretrainedValuesMatchReference() throws {
        let lpips = try pretrainedLPIPS()
        let cases: [(Pattern, Pattern, Float)] = [(.hramp, .vramp, 0.50225175), (.zeros, .half, 0.12909025),
                                                  (.zeros, .checker, 0.79529288), (.hramp, .hramp, 0)]
        for (a, b, expected) in cases {
            let d = withoutGrad { lpips(image(a), image(b)) }
            XCTAssertEqual(d.shape, [1])
            XCTAssertEqual(d.item, expected, accuracy: 1e-5, "\(a) vs \(b)")
        }
        // Batched: one call, per-image distances.
        let batch = withoutGrad {
            lpips(Tensor.concatenate([image(.hramp), image(.zeros)], alongAxis: 0),
                  Tensor.concatenate([image(.vramp), image(.checker)], alongAxis: 0))
        }
        XCTAssertEqual(batch.pointer[0], 0.50225175, accuracy: 1e-5)
        XCTAssertEqual(batch.pointer[1], 0.79529288, accuracy: 1e-5)
    }

    func testGreyInputEqualsThreeChannelRepeat() throws {
        let lpips = try pretrainedLPIPS()
        let grey = withoutGrad { lpips(image(.hramp, channels: 1), image(.vramp, channels: 1)) }
        XCTAssertEqual(grey.item, 0.50225175, accuracy: 1e-5)
        let x = randn([1, 1, 32, 32], seed: 60, scale: 0.5), y = randn([1, 1, 32, 32], seed: 61, scale: 0.5)
        let repeated = withoutGrad {
            lpips(Tensor.concatenate([x, x, x], alongAxis: 1), Tensor.concatenate([y, y, y], alongAxis: 1))
        }
        XCTAssertEqual(withoutGrad { lpips(x, y) }.item, repeated.item, accuracy: 1e-6)
    }

    func testMissingWeightsSayHowToGetThem() {
        let missing = URL(fileURLWithPath: "/nonexistent/lpips_vgg16.safetensors")
        XCTAssertThrowsError(try LPIPS.pretrained(at: missing)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("/nonexistent/lpips_vgg16.safetensors"), message)
            XCTAssertTrue(message.contains("Launch/fetch_lpips_weights.sh"), message)
        }
    }

    /// Random (not pretrained) weights keep this fast and independent of setup.
    func testGradientWithRespectToInput() {
        var g = RandomGenerator(seed: 62)
        let lpips = LPIPS(generator: &g)
        let x = randn([1, 3, 16, 16], seed: 63, scale: 0.5), y = randn([1, 3, 16, 16], seed: 64, scale: 0.5)
        assertGradientsMatch([x, y], epsilon: 3e-3, atol: 2e-4, rtol: 2e-2, maxElements: 16) { xs in lpips(xs[0], xs[1]) }
        let d = lpips(x, y)
        XCTAssertTrue(lpips.parameters().allSatisfy { !$0.requiresGrad }, "LPIPS is frozen")
        XCTAssertGreaterThan(d.item, 0)
    }

    /// The frozen VGG's weights are reordered once for the run: a second pass reuses them and
    /// gives the first pass's bits; loading new weights drops them.
    func testFrozenWeightsAreReorderedOnceAndReloadingDropsThem() throws {
        var g = RandomGenerator(seed: 65)
        let lpips = LPIPS(generator: &g)
        let x = randn([2, 3, 16, 16], seed: 66, scale: 0.5), y = randn([2, 3, 16, 16], seed: 67, scale: 0.5)
        func pass() -> [[UInt32]] {
            let xr = x.copy()
            xr.requiresGrad = true
            let d = lpips(xr, y)
            d.sum().backward()
            return [d, xr.grad!].map { $0.scalars.map(\.bitPattern) }
        }
        let cold = pass()
        let reordered = lpips.layouts.reorders
        let warm = pass()
        XCTAssertEqual(warm, cold)
        XCTAssertTrue(cold.joined().allSatisfy { Float(bitPattern: $0).isFinite })
        XCTAssertEqual(lpips.layouts.reorders, reordered, "no weight reordered again")
        #if arch(x86_64)
        XCTAssertGreaterThan(lpips.layouts.reuses, 0)
        #endif

        var h = RandomGenerator(seed: 68)
        let other = LPIPS(generator: &h)
        try lpips.load(stateDict: other.stateDict())
        let reloaded = pass()
        let xr = x.copy()
        xr.requiresGrad = true
        let d = other(xr, y)
        d.sum().backward()
        XCTAssertEqual(reloaded, [d, xr.grad!].map { $0.scalars.map(\.bitPattern) })
        XCTAssertNotEqual(reloaded, cold)
    }
}
