import Foundation
import NN
import Tensor

/// Vector quantisation with a straight-through estimator (VQ-VAE / VQGAN).
///
/// Codebook init U(±1/n_e); nearest code by ‖z‖² + ‖e‖² − 2 z·e. The loss implemented is the
/// reference's default ("legacy") form: mean((sg(z_q) − z)²) + β·mean((z_q − sg(z))²), i.e.
/// β on the codebook term. z_q = z + sg(z_q − z) passes gradients straight through to z.
public final class VectorQuantizer: Module {
    public let embedding: Embedding
    public let beta: Float

    public init(codes: Int, dimension: Int, beta: Float = 0.25, generator: inout RandomGenerator) {
        let table = Embedding(codes, dimension, generator: &generator)
        let bound = 1 / Float(codes)
        table.weight.assign(Tensor.randomUniform([codes, dimension], low: -bound, high: bound, generator: &generator))
        embedding = table
        self.beta = beta
    }

    public struct Output {
        public let quantized: Tensor
        public let loss: Tensor
        public let indices: [Int]
        /// exp(entropy of code usage in this batch): how many codes are effectively in use.
        public let perplexity: Float
    }

    /// z [B, D, h, w] → quantized [B, D, h, w].
    public func callAsFunction(_ z: Tensor) -> Output {
        let (b, d, h, w) = (z.shape[0], z.shape[1], z.shape[2], z.shape[3])
        let flat = z.permuted([0, 2, 3, 1]).reshaped([b * h * w, d])
        let indices = withoutGrad { nearestCodes(flat) }
        let zq = Tensor.embedding(table: embedding.weight, indices: indices)
        let commitment = (zq.detached() - flat).square().mean()
        let codebook = (zq - flat.detached()).square().mean()
        let loss = commitment + codebook * beta
        // Straight-through: forward value z_q, gradient of identity to z.
        let straight = flat + (zq - flat).detached()
        let quantized = straight.reshaped([b, h, w, d]).permuted([0, 3, 1, 2])
        return Output(quantized: quantized, loss: loss, indices: indices, perplexity: perplexity(indices))
    }

    /// Index of the nearest codebook entry for each row of `flat` [N, D].
    func nearestCodes(_ flat: Tensor) -> [Int] {
        let table = embedding.weight
        let n = flat.shape[0], codes = table.shape[0], d = table.shape[1]
        let dots = flat.matmul(table, transposeOther: true)  // [N, codes]
        var codeNorms = [Float](repeating: 0, count: codes)
        for j in 0..<codes {
            var s: Float = 0
            for k in 0..<d { s += table.pointer[j * d + k] * table.pointer[j * d + k] }
            codeNorms[j] = s
        }
        var result = [Int](repeating: 0, count: n)
        result.withUnsafeMutableBufferPointer { out in
            codeNorms.withUnsafeBufferPointer { norms in
                Parallel.forRange(n, grain: 64) { r in
                    for i in r {
                        // ‖z‖² is the same for every code, so it does not change the argmin.
                        let row = dots.pointer + i * codes
                        var best = 0, bestDistance = Float.infinity
                        for j in 0..<codes {
                            let distance = norms[j] - 2 * row[j]
                            if distance < bestDistance { bestDistance = distance; best = j }
                        }
                        out[i] = best
                    }
                }
            }
        }
        return result
    }

    func perplexity(_ indices: [Int]) -> Float {
        var counts = [Int: Int]()
        for i in indices { counts[i, default: 0] += 1 }
        let n = Double(indices.count)
        let entropy = counts.values.reduce(0.0) { acc, c in let p = Double(c) / n; return acc - p * log(p + 1e-10) }
        return Float(exp(entropy))
    }
}
