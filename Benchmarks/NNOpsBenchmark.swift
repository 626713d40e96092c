import Foundation
import Tensor

/// Memory-bound NN ops, each beside a plain copy of the same bytes (the bandwidth bar).
enum NNOpsBenchmark {
    static func report(_ name: String, bytes: Int, seconds: Double) {
        print(String(format: "%@: %.2f ms, %.1f GB/s effective", name, seconds * 1e3, Double(bytes) / seconds / 1e9))
    }

    static func run() {
        var g = RandomGenerator(seed: 1)
        // Autoencoder-sized activation: [4, 128, 64, 64] = 2M floats.
        let x = Tensor.randomNormal([4, 128, 64, 64], generator: &g)
        let w = Tensor.randomNormal([128], generator: &g), b = Tensor.randomNormal([128], generator: &g)
        let bytes = x.count * 4
        report("copy (read+write)", bytes: 2 * bytes, seconds: BenchmarkSuite.time { _ = x.copy() })
        report("silu forward", bytes: 2 * bytes, seconds: BenchmarkSuite.time { _ = x.silu() })
        report("gelu forward", bytes: 2 * bytes, seconds: BenchmarkSuite.time { _ = x.gelu() })
        report("groupNorm forward", bytes: 2 * bytes, seconds: BenchmarkSuite.time {
            _ = x.groupNorm(groups: 32, weight: w, bias: b, eps: 1e-6)
        })
        report("groupNormSiLU forward", bytes: 2 * bytes, seconds: BenchmarkSuite.time {
            _ = x.groupNormSiLU(groups: 32, weight: w, bias: b, eps: 1e-6)
        })
        report("groupNorm+silu unfused forward", bytes: 2 * bytes, seconds: BenchmarkSuite.time {
            _ = x.groupNorm(groups: 32, weight: w, bias: b, eps: 1e-6).silu()
        })
        x.requiresGrad = true; w.requiresGrad = true; b.requiresGrad = true
        let seed = Tensor.randomNormal(x.shape, generator: &g)
        let fused = x.groupNormSiLU(groups: 32, weight: w, bias: b, eps: 1e-6)
        report("groupNormSiLU backward", bytes: 3 * bytes, seconds: BenchmarkSuite.time {
            _ = gradients(of: fused, wrt: [x, w, b], seed: seed)
        })
        let plain = x.groupNorm(groups: 32, weight: w, bias: b, eps: 1e-6)
        report("groupNorm backward", bytes: 3 * bytes, seconds: BenchmarkSuite.time {
            _ = gradients(of: plain, wrt: [x, w, b], seed: seed)
        })

        // Transformer-sized rows: [4·1024, 320].
        let t = Tensor.randomNormal([4 * 1024, 320], generator: &g)
        let lw = Tensor.randomNormal([320], generator: &g), lb = Tensor.randomNormal([320], generator: &g)
        report("layerNorm forward [4096, 320]", bytes: 2 * t.count * 4, seconds: BenchmarkSuite.time {
            _ = t.layerNorm(weight: lw, bias: lb)
        })
        let logits = Tensor.randomNormal([4 * 1024, 1024], generator: &g)
        report("softmax [4096, 1024]", bytes: 2 * logits.count * 4, seconds: BenchmarkSuite.time { _ = logits.softmax() })

        // UNet self-attention at 32×32 latents: [4, 1024, 320], 8 heads; cross-attention to 77 tokens.
        let q = Tensor.randomNormal([4, 1024, 320], generator: &g)
        let ctx = Tensor.randomNormal([4, 77, 320], generator: &g)
        let flops = 4.0 * 4 * 1024 * 1024 * 320
        let selfTime = BenchmarkSuite.time(repeats: 3) {
            _ = Tensor.scaledDotProductAttention(query: q, key: q, value: q, heads: 8)
        }
        print(String(format: "attention self [4,1024,320] h8 forward: %.1f ms, %.1f GFLOPS", selfTime * 1e3, flops / selfTime / 1e9))
        q.requiresGrad = true
        let y = Tensor.scaledDotProductAttention(query: q, key: q, value: q, heads: 8)
        let gy = Tensor.randomNormal(y.shape, generator: &g)
        let backTime = BenchmarkSuite.time(repeats: 3) { _ = gradients(of: y, wrt: [q], seed: gy) }
        print(String(format: "attention self backward: %.1f ms, %.1f GFLOPS (5 GEMMs incl. recompute)", backTime * 1e3,
                     2.5 * flops / backTime / 1e9))
        let crossTime = BenchmarkSuite.time(repeats: 3) {
            _ = Tensor.scaledDotProductAttention(query: q, key: ctx, value: ctx, heads: 8)
        }
        print(String(format: "attention cross Lk=77 forward: %.2f ms", crossTime * 1e3))
    }
}
