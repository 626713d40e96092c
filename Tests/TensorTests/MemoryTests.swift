import XCTest
@testable import Tensor

/// A training step allocates the same activations every time; with the buffer pool the
/// process's memory must stop growing after the first steps.
final class MemoryTests: XCTestCase {
    /// conv → GroupNorm+SiLU → conv → mean-square loss, SGD on both convs.
    static func trainingStep(_ x: Tensor, _ w1: Tensor, _ w2: Tensor, _ gamma: Tensor, _ beta: Tensor) -> Float {
        let h = x.conv2d(weight: w1, bias: nil, padding: Padding2D(1)).groupNormSiLU(groups: 8, weight: gamma, bias: beta, eps: 1e-6)
        let y = h.conv2d(weight: w2, bias: nil, padding: Padding2D(1))
        let loss = (y - x).square().mean()
        loss.backward()
        withoutGrad {
            for p in [w1, w2, gamma, beta] {
                p.addInPlace(p.grad!, scale: -1e-3)
                p.zeroGrad()
            }
        }
        return loss.item
    }

    func testResidentMemoryIsFlatAcrossSteps() {
        var g = RandomGenerator(seed: 1)
        let x = Tensor.randomNormal([8, 16, 32, 32], generator: &g)
        let w1 = Tensor.randomNormal([32, 16, 3, 3], std: 0.05, generator: &g).requiringGrad()
        let w2 = Tensor.randomNormal([16, 32, 3, 3], std: 0.05, generator: &g).requiringGrad()
        let gamma = Tensor(repeating: 1, shape: [32], requiresGrad: true)
        let beta = Tensor(zeros: [32], requiresGrad: true)
        var samples: [Int] = []
        for step in 1...60 {
            _ = MemoryTests.trainingStep(x, w1, w2, gamma, beta)
            if step >= 10 { samples.append(MemoryUsage.residentBytes) }
        }
        let growth = (samples.max() ?? 0) - (samples.first ?? 0)
        // One step allocates ~10 MB of activations and gradients; 50 more steps must not add
        // more than allocator noise.
        XCTAssertLessThan(growth, 2 << 20, "resident memory grew \(growth) bytes between step 10 and step 60")
        XCTAssertGreaterThan(samples.first ?? 0, 0, "no memory reading")
    }
}

extension Tensor {
    func requiringGrad() -> Tensor { requiresGrad = true; return self }
}
