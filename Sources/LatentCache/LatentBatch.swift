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
        guard let logVariance else { return latents }
        let z = Tensor(uninitialized: latents.shape)
        let noise = Tensor.randomNormal(latents.shape, generator: &generator)
        let mu = latents.pointer, lv = logVariance.pointer, e = noise.pointer, out = z.pointer
        for i in 0..<latents.count { out[i] = mu[i] + exp(0.5 * lv[i]) * e[i] }
        return z
    }
}
