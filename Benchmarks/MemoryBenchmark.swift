import Foundation
import Tensor

/// Resident memory over 100 training steps of a small conv net: flat after warm-up, because
/// the buffer pool hands each step the buffers the previous one released.
enum MemoryBenchmark {
    static func run() {
        var g = RandomGenerator(seed: 1)
        let x = Tensor.randomNormal([16, 64, 32, 32], generator: &g)
        let w1 = Tensor.randomNormal([128, 64, 3, 3], std: 0.02, generator: &g)
        let w2 = Tensor.randomNormal([64, 128, 3, 3], std: 0.02, generator: &g)
        let gamma = Tensor(repeating: 1, shape: [128]), beta = Tensor(zeros: [128])
        for p in [w1, w2, gamma, beta] { p.requiresGrad = true }
        var readings: [Int: Int] = [:]
        for step in 1...100 {
            let h = x.conv2d(weight: w1, bias: nil, padding: Padding2D(1))
                .groupNormSiLU(groups: 32, weight: gamma, bias: beta, eps: 1e-6)
            let loss = (h.conv2d(weight: w2, bias: nil, padding: Padding2D(1)) - x).square().mean()
            loss.backward()
            withoutGrad {
                for p in [w1, w2, gamma, beta] { p.addInPlace(p.grad!, scale: -1e-3); p.zeroGrad() }
            }
            readings[step] = MemoryUsage.residentBytes
        }
        func mib(_ b: Int) -> String { String(format: "%.1f MiB", Double(b) / 1_048_576) }
        let steps = [1, 2, 5, 10, 50, 100]
        print("memory: resident after step " + steps.map { "\($0): \(mib(readings[$0]!))" }.joined(separator: ", "))
        let afterWarmup = (5...100).map { readings[$0]! }
        print("memory: growth from step 5 to 100: \(mib(afterWarmup.max()! - afterWarmup.first!)), "
            + "peak \(mib(MemoryUsage.peakResidentBytes)), pool idle \(mib(BufferPool.shared.idleBytes))")
    }
}
