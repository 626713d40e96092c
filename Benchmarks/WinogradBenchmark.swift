import Foundation
import Tensor

/// Where Winograd pays: 3×3 stride-1 convolutions (the forward, the input gradient and the
/// weight gradient, each through the engine, reorders included) on the direct kernels and on
/// Winograd, on shapes either side of the rule `ConvolutionAlgorithm` applies, in one run.
/// oneDNN only.
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
        layer(16, 256, 256, 4), layer(8, 256, 256, 4), layer(16, 512, 512, 4), layer(32, 128, 128, 2),
    ]

    static func run() {
        guard ComputeBackends.oneDNNAvailable else { print("winograd: oneDNN does not run here"); return }
        ComputeBackends.withBackend("onednn") {
            print("winograd: 3×3 stride 1, forward + both gradients, best of 10, \(Parallel.threadCount) threads")
            for layer in layers { report(layer) }
        }
    }

    static func report(_ layer: ConvBenchmark.Layer) {
        let direct = ConvolutionAlgorithm.with(.direct) { passes(layer) }
        let winograd = ConvolutionAlgorithm.withWinogradOnEveryShape { passes(layer) }
        let engine = ConvolutionAlgorithm.with(.winograd) { passes(layer) }
        let perPass = zip(["forward", "input grad", "weight grad"], zip(direct.each, winograd.each))
            .map { String(format: "%@ %.2f", $0, $1.1 / $1.0) }.joined(separator: ", ")
        print(String(format: "%@: direct %.3f ms, winograd %.3f ms (%.2f of direct; %@); the engine's choice %.3f ms (%.2f)",
                     layer.shape, direct.total * 1e3, winograd.total * 1e3, winograd.total / direct.total, perPass,
                     engine.total * 1e3, engine.total / direct.total))
    }

    /// Best seconds of the forward, the input gradient alone and the weight and bias gradients
    /// alone (each pass through the engine, reorders included), and their sum.
    static func passes(_ layer: ConvBenchmark.Layer) -> (each: [Double], total: Double) {
        let (x, w, b, seed) = ConvBenchmark.operands(layer)
        let pad = layer.padding
        let forward = BenchmarkSuite.time(repeats: 10) { _ = withoutGrad { x.conv2d(weight: w, bias: b, padding: pad) } }
        // Which gradients a convolution computes is fixed when its forward runs, by which
        // operands require them: each pass gets a graph that asks for its own alone.
        func backward(_ wrt: [Tensor]) -> Double {
            for t in [x, w, b] { t.requiresGrad = wrt.contains { $0 === t } }
            defer { for t in [x, w, b] { t.requiresGrad = true } }
            let y = x.conv2d(weight: w, bias: b, padding: pad)
            return BenchmarkSuite.time(repeats: 10) { _ = gradients(of: y, wrt: wrt, seed: seed) }
        }
        let input = backward([x])
        let weight = backward([w, b])
        return ([forward, input, weight], forward + input + weight)
    }
}
