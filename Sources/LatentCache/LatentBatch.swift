import Foundation
import Tensor

/// One rank's batch from the cache.
public struct LatentBatch {
    /// The posterior mean μ (KL caches) or the latent (VQ caches): [B, C, h, w].
    public let latents: Tensor
    /// log σ² of the KL posterior, [B, C, h, w]; nil for VQ caches.
    public let logVariance: Tensor?
    /// Class labels, −1 where the dataset has none.
    public let labels: [Int]
    /// Each sample's index in the source dataset.
    public let indices: [Int]
    /// Captions when the cache stores them.
    public let captions: [String?]?

    /// A latent to train on: a fresh z = μ + σ·ε from the posterior (so every epoch sees a
    /// different draw, as when encoding on the fly), or the stored latent for VQ.
    public func sample(generator: inout RandomGenerator) -> Tensor {
        sample(globalBatchNoise: &generator, slice: (0, 1))
    }
}

extension LatentBatch {
    /// As `sample(generator:)`, with the posterior noise drawn for the whole global batch
    /// (`generator` advancing identically on every rank) and this rank's rows kept, so a
    /// sample's z does not depend on the number of ranks.
    public func sample(globalBatchNoise generator: inout RandomGenerator, slice: (index: Int, count: Int)) -> Tensor {
        guard let logVariance else { return latents }
        let n = latents.shape[0], size = latents.count / max(n, 1)
        let all = Tensor.randomNormal([n * slice.count * size], generator: &generator)
        let mu = latents.pointer, lv = logVariance.pointer, e = all.pointer + slice.index * n * size
        let z = Tensor(uninitialized: latents.shape)
        let out = z.pointer
        for i in 0..<latents.count { out[i] = mu[i] + exp(0.5 * lv[i]) * e[i] }
        return z
    }
}
