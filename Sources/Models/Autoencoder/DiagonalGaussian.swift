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
        sample(generator: &generator, batchSlice: 0, of: 1)
    }

    /// z = μ + σ·ε with ε slice `index` of the noise drawn for `count` such batches.
    ///
    /// Data parallelism: rank r of R holds slice r of the global batch; every rank draws the
    /// global batch's noise from the same generator and keeps its slice, so each sample gets
    /// the noise a single process on the whole global batch would give it, whatever R.
    public func sample(generator: inout RandomGenerator, batchSlice index: Int, of count: Int) -> Tensor {
        precondition(count >= 1 && index >= 0 && index < count, "sample: batch slice \(index) of \(count)")
        var globalShape = mean.shape
        globalShape[0] *= count
        let all = Tensor.randomNormal(globalShape, generator: &generator)
        let noise = count == 1 ? all : Tensor(uninitialized: mean.shape)
        if count > 1 { noise.pointer.update(from: all.pointer + index * mean.count, count: mean.count) }
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
