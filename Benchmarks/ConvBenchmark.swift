import Foundation
import Tensor

/// conv2d throughput on an autoencoder-sized layer, against the machine's GEMM ceiling.
enum ConvBenchmark {
    static func run() {
        let (n, c, hw, k) = (16, 128, 32, 3)
        var g = RandomGenerator(seed: 2)
        let x = Tensor.randomNormal([n, c, hw, hw], generator: &g)
        let w = Tensor.randomNormal([c, c, k, k], std: 0.03, generator: &g)
        let b = Tensor.randomNormal([c], generator: &g)
        x.requiresGrad = true
        w.requiresGrad = true
        b.requiresGrad = true
        let seed = Tensor.randomNormal([n, c, hw, hw], generator: &g)
        let pad = Padding2D(1)
        // One GEMM-equivalent pass: 2·N·Cout·Cin·k²·Hout·Wout; fwd+bwd is three of them.
        let pass = 2 * Double(n * c * c * k * k * hw * hw)

        let forward = BenchmarkSuite.time { _ = withoutGrad { x.conv2d(weight: w, bias: b, padding: pad) } }
        let y = x.conv2d(weight: w, bias: b, padding: pad)
        let backward = BenchmarkSuite.time { _ = gradients(of: y, wrt: [x, w, b], seed: seed) }
        let both = BenchmarkSuite.time {
            let y = x.conv2d(weight: w, bias: b, padding: pad)
            _ = gradients(of: y, wrt: [x, w, b], seed: seed)
        }
        let gemm = GEMMBenchmark.gflops()
        let shape = "\(n)x\(c)x\(hw)x\(hw)"
        print(String(format: "conv 3x3 fwd (%@): %.1f GFLOPS, ratio to gemm %.2f", shape, pass / forward / 1e9, pass / forward / 1e9 / gemm))
        print(String(format: "conv 3x3 bwd (%@): %.1f GFLOPS, ratio to gemm %.2f", shape, 2 * pass / backward / 1e9, 2 * pass / backward / 1e9 / gemm))
        print(String(format: "conv 3x3 fwd+bwd (%@): %.1f GFLOPS, ratio to gemm %.2f (gemm %.1f GFLOPS)",
                     shape, 3 * pass / both / 1e9, 3 * pass / both / 1e9 / gemm, gemm))
    }
}
