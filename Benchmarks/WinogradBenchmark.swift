import Foundation
import Tensor

/// Where Winograd pays: 3×3 stride-1 convolutions (forward and both gradients, through the
/// engine, reorders included) on the direct kernels and on Winograd, on shapes either side
/// of the rule `ConvolutionAlgorithm` applies, in one run. oneDNN only.
enum WinogradBenchmark {
    struct Shape {
        let batch: Int, inChannels: Int, outChannels: Int, size: Int
        var label: String { "n\(batch) \(inChannels)->\(outChannels) @\(size)x\(size)" }
    }

    /// The models' shapes and the edges of the rule: few tiles (a 4×4 map at small batch,
    /// as in sampling), few channels (a latent's first convolution), 2×2 maps.
    static let shapes = [
        Shape(batch: 16, inChannels: 128, outChannels: 128, size: 32), Shape(batch: 16, inChannels: 32, outChannels: 32, size: 32),
        Shape(batch: 16, inChannels: 16, outChannels: 32, size: 32), Shape(batch: 16, inChannels: 16, outChannels: 16, size: 16),
        Shape(batch: 16, inChannels: 4, outChannels: 128, size: 8),
        Shape(batch: 32, inChannels: 128, outChannels: 128, size: 8), Shape(batch: 4, inChannels: 128, outChannels: 128, size: 8),
        Shape(batch: 2, inChannels: 128, outChannels: 128, size: 8), Shape(batch: 1, inChannels: 128, outChannels: 128, size: 16),
        Shape(batch: 32, inChannels: 128, outChannels: 128, size: 4), Shape(batch: 16, inChannels: 128, outChannels: 128, size: 4),
        Shape(batch: 8, inChannels: 128, outChannels: 128, size: 4), Shape(batch: 2, inChannels: 128, outChannels: 128, size: 4),
        Shape(batch: 16, inChannels: 512, outChannels: 512, size: 4), Shape(batch: 32, inChannels: 128, outChannels: 128, size: 2),
    ]

    static func run() {
        guard ComputeBackends.oneDNNAvailable else { print("winograd: oneDNN does not run here"); return }
        ComputeBackends.withBackend("onednn") {
            print("winograd: 3×3 stride 1, forward + both gradients, best of 10, \(Parallel.threadCount) threads")
            for shape in shapes { report(shape) }
        }
    }

    static func report(_ shape: Shape) {
        let direct = ConvolutionAlgorithm.with(.direct) { seconds(shape) }
        let winograd = ConvolutionAlgorithm.withWinogradOnEveryShape { seconds(shape) }
        let engine = ConvolutionAlgorithm.with(.winograd) { seconds(shape) }
        print(String(format: "%@: direct %.3f ms, winograd %.3f ms (%.2f of direct); the engine's choice %.3f ms (%.2f)",
                     shape.label, direct * 1e3, winograd * 1e3, winograd / direct, engine * 1e3, engine / direct))
    }

    static func seconds(_ shape: Shape) -> Double {
        var g = RandomGenerator(seed: 3)
        let x = Tensor.randomNormal([shape.batch, shape.inChannels, shape.size, shape.size], generator: &g)
        let w = Tensor.randomNormal([shape.outChannels, shape.inChannels, 3, 3], std: 0.03, generator: &g)
        let b = Tensor.randomNormal([shape.outChannels], generator: &g)
        let seed = Tensor.randomNormal([shape.batch, shape.outChannels, shape.size, shape.size], generator: &g)
        for t in [x, w, b] { t.requiresGrad = true }
        return BenchmarkSuite.time(repeats: 10) {
            let y = x.conv2d(weight: w, bias: b, padding: Padding2D(1))
            _ = gradients(of: y, wrt: [x, w, b], seed: seed)
        }
    }
}
