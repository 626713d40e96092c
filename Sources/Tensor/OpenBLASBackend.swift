import CBLAS

/// The portable backend: cblas_sgemm, and convolution as im2col + GEMM (Conv2d.swift).
final class OpenBLASBackend: ComputeBackend {
    let name = "openblas"
    var summary: String { "openblas (im2col + cblas_sgemm, \(Parallel.threadCount) threads)" }

    @inline(__always)
    func sgemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
               a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
               beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        cblas_sgemm(CblasRowMajor,
                    transposeA ? CblasTrans : CblasNoTrans,
                    transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Im2col + GEMM reads the weights as they are: there is nothing for `layouts` to keep.
    func conv2dForward(_ geo: ConvGeometry, input: UnsafePointer<Float>, weight: Tensor,
                       bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>,
                       keepForBackward: Bool, layouts: WeightLayoutCache?) -> AnyObject? {
        Conv2dKernels.forward(geo, input: input, weight: weight.pointer, bias: bias, output: output)
        return nil
    }

    func conv2dBackward(_ geo: ConvGeometry, input: Tensor, weight: Tensor, gradOutput: Tensor, saved: AnyObject?,
                        needInput: Bool, needWeight: Bool, needBias: Bool,
                        layouts: WeightLayoutCache?) -> Conv2dKernels.Gradients {
        Conv2dKernels.backward(geo, input: input, weight: weight, gradOutput: gradOutput,
                               needInput: needInput, needWeight: needWeight, needBias: needBias)
    }
}
