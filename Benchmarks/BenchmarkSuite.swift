import Foundation
import Tensor

/// Registry of benchmarks; `Benchmarks NAME…` runs a subset, no argument runs all.
enum BenchmarkSuite {
    static let all: [(name: String, run: () -> Void)] = [
        ("gemm", GEMMBenchmark.run),
        ("memory", MemoryBenchmark.run),
        ("conv", ConvBenchmark.run),
        ("nnops", NNOpsBenchmark.run),
        ("latentcache", LatentCacheBenchmark.run),
        ("unet", UNetBenchmark.run),
    ]

    static func runAll(arguments: [String]) {
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
        var g = RandomGenerator(seed: 1)
        let a = Tensor.randomNormal([n, n], generator: &g), b = Tensor.randomNormal([n, n], generator: &g)
        let c = Tensor(zeros: [n, n])
        let t = BenchmarkSuite.time {
            BLAS.sgemm(transposeA: false, transposeB: false, m: n, n: n, k: n,
                       a: a.pointer, lda: n, b: b.pointer, ldb: n, c: c.pointer, ldc: n)
        }
        return 2 * Double(n * n * n) / t / 1e9
    }

    static func run() {
        print(String(format: "gemm: cblas_sgemm 2048x2048x2048: %.1f GFLOPS", gflops()))
    }
}
