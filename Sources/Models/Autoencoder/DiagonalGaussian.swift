import Tensor

/// The KL autoencoder's posterior N(μ, σ²) over latents, from moments [B, 2·C, h, w].
public struct DiagonalGaussian {
    public let mean: Tensor
    /// Clamped to [−30, 20] as the reference.
    public let logVariance: Tensor

    public init(moments: Tensor) {
        let halves = moments.chunked(2, alongAxis: 1)
        mean = halves[0]
        logVariance = halves[1].clamped(min: -30, max: 20)
    }

    public init(mean: Tensor, logVariance: Tensor) {
        self.mean = mean
        self.logVariance = logVariance
    }

    public var standardDeviation: Tensor { (logVariance * 0.5).exp() }
    public var variance: Tensor { logVariance.exp() }

    /// z = μ + σ·ε, differentiable in μ and σ (reparameterisation).
    public func sample(generator: inout RandomGenerator) -> Tensor {
        let noise = Tensor.randomNormal(mean.shape, generator: &generator)
        return mean + standardDeviation * noise
    }

    /// The mode μ.
    public func mode() -> Tensor { mean }

    /// KL(q ‖ N(0, I)) per sample: 0.5·Σ(μ² + σ² − 1 − log σ²) over C, H, W → [B].
    public func kl() -> Tensor {
        let perElement = (mean.square() + variance - logVariance - 1) * 0.5
        return perElement.sum(alongAxes: Array(1..<mean.rank))
    }
}
