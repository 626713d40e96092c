import Foundation
import Tensor

/// Registry of benchmarks; `Benchmarks NAME…` runs a subset, no argument runs all.
enum BenchmarkSuite {
    static let all: [(name: String, run: () -> Void)] = [
        ("gemm", GEMMBenchmark.run),
        ("memory", MemoryBenchmark.run),
        ("conv", ConvBenchmark.run),
        ("winograd", WinogradBenchmark.run),
        ("nnops", NNOpsBenchmark.run),
        ("latentcache", LatentCacheBenchmark.run),
        ("unet", UNetBenchmark.run),
        ("autoencoder", AutoencoderBenchmark.run),
        ("update", WeightUpdateBenchmark.run),
        ("allreduce", AllreduceBenchmark.run),
        ("sharded", ShardedUpdateBenchmark.run),
    ]

    static func runAll(arguments: [String]) {
        if arguments == ["--json"] { SideBySideJSON.run(); return }
        var arguments = arguments
        if let i = arguments.firstIndex(of: "--profile") { arguments.remove(at: i); StepTiming.profile = true }
        let selected = arguments.isEmpty ? all : all.filter { arguments.contains($0.name) }
        if selected.isEmpty {
            print("unknown benchmark; available: \(all.map(\.name).joined(separator: ", "))")
            exit(2)
        }
        print("threads: BLAS \(BLAS.threadCount), kernels \(Parallel.threadCount)")
        for b in selected { b.run() }
    }

    /// Best wall time of `repeats` runs after one warm-up, in seconds.
    static func time(repeats: Int = 5, _ body: () -> Void) -> Double {
        body()
        var best = Double.infinity
        for _ in 0..<repeats {
            let start = DispatchTime.now().uptimeNanoseconds
            body()
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return best
    }
}

enum GEMMBenchmark {
    /// The ceiling every conv and linear layer is measured against.
    static func gflops(size n: Int = 2048) -> Double {
        gflops(m: n, n: n, k: n, oneDNN: false)
    }

    /// C[m×n] = A[m×k]·B[k×n] through cblas_sgemm or dnnl_sgemm, best of five.
    static func gflops(m: Int, n: Int, k: Int, transposeB: Bool = false, batch: Int = 1, oneDNN: Bool) -> Double {
        var g = RandomGenerator(seed: 1)
        let a = Tensor.randomNormal([batch, m, k], generator: &g)
        let b = Tensor.randomNormal(transposeB ? [batch, n, k] : [batch, k, n], generator: &g)
        let c = Tensor(zeros: [batch, m, n])
        let t = ComputeBackends.withBackend(oneDNN ? "onednn" : "openblas") {
            BenchmarkSuite.time {
                for i in 0..<batch {
                    BLAS.sgemm(transposeA: false, transposeB: transposeB, m: m, n: n, k: k, a: a.pointer + i * m * k, lda: k,
                               b: b.pointer + i * k * n, ldb: transposeB ? k : n, c: c.pointer + i * m * n, ldc: n)
                }
            }
        }
        return 2 * Double(batch * m * n * k) / t / 1e9
    }

    static func run() {
        print(String(format: "gemm: cblas_sgemm 2048x2048x2048: %.1f GFLOPS", gflops()))
        guard ComputeBackends.oneDNNAvailable else { return }
        // The models' GEMMs: the UNet's linear layers on 32 × 64 tokens (GEGLU in and out,
        // q/k/v and projections), an attention score block, and the big square.
        let shapes: [(String, Int, Int, Int, Bool, Int)] = [
            ("square 2048³", 2048, 2048, 2048, false, 1),
            ("linear 2048x128 -> 1024 (GEGLU in)", 2048, 1024, 128, true, 1),
            ("linear 2048x512 -> 128 (GEGLU out)", 2048, 128, 512, true, 1),
            ("linear 2048x128 -> 128 (q/k/v, proj)", 2048, 128, 128, true, 1),
            ("attention scores 128 x 64x32 · 32x64", 64, 64, 32, true, 128),
        ]
        for (label, m, n, k, tb, batch) in shapes {
            let blas = gflops(m: m, n: n, k: k, transposeB: tb, batch: batch, oneDNN: false)
            let dnnl = gflops(m: m, n: n, k: k, transposeB: tb, batch: batch, oneDNN: true)
            print(String(format: "gemm %@: cblas_sgemm %.1f GFLOPS, dnnl_sgemm %.1f GFLOPS (ratio %.2f)",
                         label, blas, dnnl, dnnl / blas))
        }
    }
}
