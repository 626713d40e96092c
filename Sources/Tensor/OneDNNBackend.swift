import CDNNL
import CBLAS
import Foundation

/// The oneDNN backend: convolutions on its primitives (per-shape, cached), GEMM on cblas.
///
/// GEMM stays on cblas_sgemm: dnnl_sgemm lost to it on most of the models' shapes
/// (Benchmarks `gemm`, docs/PERFORMANCE.md). Shapes oneDNN has no primitive for (an empty
/// batch) run on the OpenBLAS kernels.
final class OneDNNBackend: ComputeBackend, @unchecked Sendable {
    static let shared: OneDNNBackend? = OneDNN.context == nil ? nil : OneDNNBackend()

    let name = "onednn"

    private struct Key: Hashable {
        let input: [Int], weight: [Int], stride: Int, padding: Padding2D, bias: Bool
    }

    private var convolutions: [Key: OneDNNConvolution?] = [:]
    private let lock = NSLock()

    var summary: String {
        var isa = "no convolution primitive"
        if let probe = try? OneDNNConvolution(ConvGeometry(input: [1, 16, 8, 8], weight: [16, 16, 3, 3], stride: 1,
                                                           padding: .init(1)), hasBias: false) {
            isa = probe.forward.implementation
        }
        return "onednn (convolutions \(isa), GEMM cblas_sgemm, \(Parallel.threadCount) threads)"
    }

    @inline(__always)
    func sgemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
               a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
               beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        ComputeBackends.openBLAS.sgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                                       a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
    }

    /// dnnl_sgemm with the GEMM thread count (kept for the side-by-side GEMM benchmark).
    func dnnlSgemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
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
                      stride: geo.stride, padding: geo.padding, bias: hasBias)
        lock.lock()
        defer { lock.unlock() }
        if let cached = convolutions[key] { return cached }
        let made = try? OneDNNConvolution(geo, hasBias: hasBias)
        convolutions[key] = .some(made)
        return made
    }

    func conv2dForward(_ geo: ConvGeometry, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                       bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>) {
        guard let conv = convolution(geo, hasBias: bias != nil) else {
            Conv2dKernels.forward(geo, input: input, weight: weight, bias: bias, output: output)
            return
        }
        conv.runForward(input: input, weight: weight, bias: bias, output: output)
    }

    func conv2dBackward(_ geo: ConvGeometry, input: Tensor, weight: Tensor, gradOutput: Tensor,
                        needInput: Bool, needWeight: Bool, needBias: Bool) -> Conv2dKernels.Gradients {
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
                                needInput: needInput, needWeight: needWeight, needBias: needBias)
    }
}

extension BLAS {
    /// dnnl_sgemm on the same arguments as `sgemm`, for the GEMM comparison in Benchmarks.
    public static func oneDNNSgemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                                   alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                                   b: UnsafePointer<Float>, ldb: Int,
                                   beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        guard let dnnl = OneDNNBackend.shared else { preconditionFailure("oneDNN is not available on this machine") }
        dnnl.dnnlSgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                       a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
    }
}
