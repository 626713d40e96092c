import CDNNL
import Foundation

/// The oneDNN backend: convolutions on its primitives (per shape and algorithm, cached), GEMM
/// on dnnl_sgemm.
///
/// GEMM is dnnl_sgemm, not cblas_sgemm, so that it runs on OpenMP's team with the primitives
/// and the engine's loops: OpenBLAS's own threads and a spinning team took the cores from
/// each other (docs/PERFORMANCE.md). Inside a parallel loop dnnl_sgemm runs on the calling
/// thread alone. Shapes oneDNN has no primitive for (an empty batch) run on the OpenBLAS
/// kernels.
final class OneDNNBackend: ComputeBackend, @unchecked Sendable {
    static let shared: OneDNNBackend? = OneDNN.context == nil ? nil : OneDNNBackend()

    let name = "onednn"

    private struct Key: Hashable {
        let input: [Int], weight: [Int], stride: Int, padding: Padding2D, bias: Bool
        /// Whether Winograd is asked for first (`ConvolutionAlgorithm.triesWinograd`).
        let winograd: Bool
    }

    private var convolutions: [Key: OneDNNConvolution?] = [:]
    private let lock = NSLock()

    var summary: String {
        let probe = ConvGeometry(input: [8, 64, 8, 8], weight: [64, 64, 3, 3], stride: 1, padding: .init(1))
        func implementation(_ algorithm: ConvolutionAlgorithm) -> String {
            (try? OneDNNConvolution(probe, hasBias: false, preferring: algorithm))?.forward.implementation
                ?? "no convolution primitive"
        }
        let direct = implementation(.direct), preferred = implementation(ConvolutionAlgorithm.current)
        let convolutions = preferred == direct ? direct : "\(preferred) where it pays, else \(direct)"
        return "onednn (convolutions \(convolutions), GEMM dnnl_sgemm, \(Parallel.threadCount) threads)"
    }

    /// dnnl_sgemm with the GEMM thread count.
    func sgemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
               a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
               beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        OneDNN.useThreads(BLAS.gemmThreads)
        let status = dnnl_sgemm(CChar(UInt8(ascii: transposeA ? "T" : "N")), CChar(UInt8(ascii: transposeB ? "T" : "N")),
                                Int64(m), Int64(n), Int64(k), alpha, a, Int64(lda), b, Int64(ldb), beta, c, Int64(ldc))
        precondition(status == dnnl_success, "dnnl_sgemm \(m)×\(n)×\(k) failed: \(status.rawValue)")
    }

    /// The cached primitives for this shape, or nil when oneDNN cannot run it.
    private func convolution(_ geo: ConvGeometry, hasBias: Bool) -> OneDNNConvolution? {
        guard geo.batch > 0 else { return nil }
        let key = Key(input: [geo.batch, geo.inChannels, geo.height, geo.width],
                      weight: [geo.outChannels, geo.inChannels, geo.kernelHeight, geo.kernelWidth],
                      stride: geo.stride, padding: geo.padding, bias: hasBias,
                      winograd: ConvolutionAlgorithm.current.triesWinograd(geo))
        lock.lock()
        defer { lock.unlock() }
        if let cached = convolutions[key] { return cached }
        let made = try? OneDNNConvolution(geo, hasBias: hasBias, preferring: key.winograd ? .winograd : .direct)
        convolutions[key] = .some(made)
        return made
    }

    func conv2dForward(_ geo: ConvGeometry, input: UnsafePointer<Float>, weight: Tensor,
                       bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>,
                       keepForBackward: Bool, layouts: WeightLayoutCache?) -> AnyObject? {
        guard let conv = convolution(geo, hasBias: bias != nil) else {
            Conv2dKernels.forward(geo, input: input, weight: weight.pointer, bias: bias, output: output)
            return nil
        }
        return conv.runForward(input: input, weight: weight, bias: bias, output: output, keepInput: keepForBackward,
                               layouts: layouts)
    }

    func conv2dBackward(_ geo: ConvGeometry, input: Tensor, weight: Tensor, gradOutput: Tensor, saved: AnyObject?,
                        needInput: Bool, needWeight: Bool, needBias: Bool,
                        layouts: WeightLayoutCache?) -> Conv2dKernels.Gradients {
        // The forward's cache entry (with or without bias) carries the backward primitives.
        let conv = convolution(geo, hasBias: false)
        let ready = conv.map { c in
            lock.lock()
            defer { lock.unlock() }
            return c.prepareBackward(needInput: needInput, needWeight: needWeight, needBias: needBias)
        } ?? false
        guard let conv, ready else {
            return Conv2dKernels.backward(geo, input: input, weight: weight, gradOutput: gradOutput,
                                          needInput: needInput, needWeight: needWeight, needBias: needBias)
        }
        return conv.runBackward(input: input, weight: weight, gradOutput: gradOutput,
                                savedInput: saved as? OneDNNStagedInput,
                                needInput: needInput, needWeight: needWeight, needBias: needBias, layouts: layouts)
    }
}
