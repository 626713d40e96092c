import CKernels
import Tensor

/// torch.nn.utils.clip_grad_norm_: the L2 norm of all gradients taken together; when it
/// exceeds `maxNorm`, every gradient is scaled by maxNorm / (norm + 1e-6). Returns the norm
/// before clipping. Parameters without a gradient are ignored.
///
/// Squares are summed in Double over fixed blocks, so the result does not depend on the
/// thread count (ranks must agree after an allreduce).
@discardableResult
public func clipGradNorm(_ parameters: [Tensor], maxNorm: Float) -> Float {
    let grads = parameters.compactMap { $0.grad }
    let total = gradientNorm(grads)
    let coefficient = clipCoefficient(norm: total, maxNorm: maxNorm)
    if coefficient < 1 {
        for g in grads { g.scaleInPlace(coefficient) }
    }
    return total
}

/// The L2 norm of these tensors taken together (clip_grad_norm_'s total_norm).
public func gradientNorm(_ gradients: [Tensor]) -> Float {
    Adam.norm(ofSquares: gradients.map(squaredNorm))
}

/// What clip_grad_norm_ multiplies every gradient by: maxNorm / (norm + 1e-6) when that is
/// below 1, else 1 (the gradients are left alone).
public func clipCoefficient(norm: Float, maxNorm: Float) -> Float {
    precondition(maxNorm >= 0, "clipGradNorm: maxNorm must be ≥ 0, got \(maxNorm)")
    let coefficient = maxNorm / (norm + 1e-6)
    return coefficient < 1 ? coefficient : 1
}

/// Σ t², summed in Double over fixed blocks (the same bits at any thread count).
func squaredNorm(_ t: Tensor) -> Double {
    let block = 4096, n = t.count, p = t.pointer
    let blocks = (n + block - 1) / block
    var partial = [Double](repeating: 0, count: blocks)
    partial.withUnsafeMutableBufferPointer { part in
        Parallel.forRange(blocks, grain: 8) { r in
            for b in r {
                part[b] = ldm_sum_of_squares_f32(p + b * block, Int64(min(n, (b + 1) * block) - b * block))
            }
        }
    }
    return partial.reduce(0, +)
}
