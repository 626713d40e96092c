import Foundation
import Tensor

/// Where Winograd pays: 3×3 stride-1 convolutions (forward and both gradients, through the
/// engine, reorders included) on the direct kernels and on Winograd, on shapes either side
/// of the rule `ConvolutionAlgorithm` applies, in one run. oneDNN only.
enum WinogradBenchmark {
    static func layer(_ batch: Int, _ inChannels: Int, _ outChannels: Int, _ size: Int) -> ConvBenchmark.Layer {
        ConvBenchmark.Layer(batch: batch, inChannels: inChannels, outChannels: outChannels, size: size, kernel: 3)
    }

    /// The models' shapes and the edges of the rule: few tiles (a 4×4 map at small batch,
    /// as in sampling), few channels (a latent's first convolution), 2×2 maps.
    static let layers = [
        layer(16, 128, 128, 32), layer(16, 32, 32, 32), layer(16, 16, 32, 32), layer(16, 16, 16, 16), layer(16, 4, 128, 8),
        layer(32, 128, 128, 8), layer(4, 128, 128, 8), layer(2, 128, 128, 8), layer(1, 128, 128, 16),
        layer(32, 128, 128, 4), layer(16, 128, 128, 4), layer(8, 128, 128, 4), layer(2, 128, 128, 4),
        layer(16, 512, 512, 4), layer(32, 128, 128, 2),
    ]

    static func run() {
        guard ComputeBackends.oneDNNAvailable else { print("winograd: oneDNN does not run here"); return }
        ComputeBackends.withBackend("onednn") {
            print("winograd: 3×3 stride 1, forward + both gradients, best of 10, \(Parallel.threadCount) threads")
            for layer in layers { report(layer) }
        }
    }

    static func report(_ layer: ConvBenchmark.Layer) {
        let direct = ConvolutionAlgorithm.with(.direct) { ConvBenchmark.measure(layer).both }
        let winograd = ConvolutionAlgorithm.withWinogradOnEveryShape { ConvBenchmark.measure(layer).both }
        let engine = ConvolutionAlgorithm.with(.winograd) { ConvBenchmark.measure(layer).both }
        print(String(format: "%@: direct %.3f ms, winograd %.3f ms (%.2f of direct); the engine's choice %.3f ms (%.2f)",
                     layer.shape, direct * 1e3, winograd * 1e3, winograd / direct, engine * 1e3, engine / direct))
    }
}
