import XCTest
@testable import Models
import Tensor

final class DiagonalGaussianTests: XCTestCase {
    /// Moments [1, 4, 2, 2]: mean = channels 0–1, logvar = channels 2–3 (one entry beyond the
    /// clamp; below −30 rather than above 20, so e^logvar does not swamp Float32 differences).
    func moments() -> Tensor {
        let m = randn([1, 4, 2, 2], seed: 40, scale: 0.7)
        m.pointer[12] = -35  // clamped to −30, so no gradient there
        return m
    }

    func testSampleIsReparameterised() {
        let m = moments()
        // The same noise on every evaluation: z = μ + σ·ε is then smooth in the moments.
        assertGradientsMatch([m], epsilon: 1e-3, atol: 1e-3) { xs in
            var g = RandomGenerator(seed: 41)
            return DiagonalGaussian(moments: xs[0]).sample(generator: &g)
        }
        var g = RandomGenerator(seed: 41)
        let grads = gradients(of: DiagonalGaussian(moments: m).sample(generator: &g).sum(), wrt: [m])[0]!
        XCTAssertEqual(grads.pointer[12], 0, "the clamped log-variance gets no gradient")
        XCTAssertEqual(grads.pointer[0], 1, "dz/dμ = 1")
    }

    func testSampleStatistics() {
        let mean = Tensor(repeating: 0.5, shape: [1, 1, 64, 64])
        let logvar = Tensor(repeating: Float(log(0.25)), shape: [1, 1, 64, 64])
        var g = RandomGenerator(seed: 42)
        let z = DiagonalGaussian(mean: mean, logVariance: logvar).sample(generator: &g)
        let mu = z.mean().item
        let sd = ((z - mu).square().mean().item).squareRoot()
        XCTAssertEqual(mu, 0.5, accuracy: 0.03)
        XCTAssertEqual(sd, 0.5, accuracy: 0.03)
    }

    func testKLGradient() {
        let m = moments()
        assertGradientsMatch([m], epsilon: 1e-3, atol: 1e-3) { xs in DiagonalGaussian(moments: xs[0]).kl() }
        // d kl / d logvar = ½ (e^logvar − 1), 0 where clamped; d kl / d μ = μ.
        let grads = gradients(of: DiagonalGaussian(moments: m).kl().sum(), wrt: [m])[0]!
        XCTAssertEqual(grads.pointer[12], 0)
        XCTAssertEqual(grads.pointer[3], m.pointer[3], accuracy: 1e-6)
        XCTAssertEqual(grads.pointer[9], 0.5 * (exp(m.pointer[9]) - 1), accuracy: 1e-6)
    }
}
