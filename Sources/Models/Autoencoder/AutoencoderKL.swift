import NN
import Tensor

/// The KL-regularised first stage: encoder → quant_conv → N(μ, σ²) → z → post_quant_conv →
/// decoder.
public final class AutoencoderKL: Module, FirstStage {
    public let config: AutoencoderConfig
    public let encoder: FirstStageEncoder
    public let decoder: FirstStageDecoder
    /// Dropout's random stream (saved with training state).
    public let randomSource: RandomSource
    let quantConv: Conv2d
    let postQuantConv: Conv2d

    public init(_ config: AutoencoderConfig, generator: inout RandomGenerator) {
        precondition(config.validationErrors().isEmpty, config.validationErrors().joined(separator: "; "))
        self.config = config
        randomSource = RandomSource(seed: generator.next())
        encoder = FirstStageEncoder(config, doubleZ: true, randomSource: randomSource, generator: &generator)
        decoder = FirstStageDecoder(config, randomSource: randomSource, generator: &generator)
        quantConv = Conv2d(2 * config.zChannels, 2 * config.embedDim, kernelSize: 1, generator: &generator)
        postQuantConv = Conv2d(config.embedDim, config.zChannels, kernelSize: 1, generator: &generator)
    }

    public func encode(_ x: Tensor) -> DiagonalGaussian {
        DiagonalGaussian(moments: quantConv(encoder(x)))
    }

    public func decode(_ z: Tensor) -> Tensor { decoder(postQuantConv(z)) }

    /// Reconstruction and posterior; samples z during training, takes the mode otherwise.
    /// `noiseSlice`: this rank's slice of the global batch (see `DiagonalGaussian.sample`).
    public func callAsFunction(_ x: Tensor, samplePosterior: Bool, generator: inout RandomGenerator,
                               noiseSlice: (index: Int, count: Int) = (0, 1))
        -> (reconstruction: Tensor, posterior: DiagonalGaussian) {
        let posterior = encode(x)
        let z = samplePosterior
            ? posterior.sample(generator: &generator, batchSlice: noiseSlice.index, of: noiseSlice.count)
            : posterior.mode()
        return (decode(z), posterior)
    }

    public var lastLayerWeight: Tensor { decoder.lastLayerWeight }

    /// Deterministic reconstruction (posterior mode), for evaluation.
    public func reconstruct(_ x: Tensor) -> Tensor { decode(encode(x).mode()) }
}

/// What the rest of the pipeline needs from a first stage, KL or VQ.
public protocol FirstStage: Module {
    var config: AutoencoderConfig { get }
    /// The decoder's last conv weight (the adaptive GAN weight's reference layer).
    var lastLayerWeight: Tensor { get }
    /// Deterministic reconstruction for evaluation.
    func reconstruct(_ x: Tensor) -> Tensor
}
