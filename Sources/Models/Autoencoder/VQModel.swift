import NN
import Tensor

/// The VQ-regularised first stage: encoder → quant_conv → (quantize inside decode) →
/// post_quant_conv → decoder. The diffusion model works on the pre-quantisation latent.
public final class VQModel: Module, FirstStage {
    public let config: AutoencoderConfig
    public let encoder: FirstStageEncoder
    public let decoder: FirstStageDecoder
    /// Dropout's random stream (saved with training state).
    public let randomSource: RandomSource
    public let quantize: VectorQuantizer
    let quantConv: Conv2d
    let postQuantConv: Conv2d

    public init(_ config: AutoencoderConfig, generator: inout RandomGenerator) {
        precondition(config.validationErrors().isEmpty, config.validationErrors().joined(separator: "; "))
        self.config = config
        randomSource = RandomSource(seed: generator.next())
        encoder = FirstStageEncoder(config, doubleZ: false, randomSource: randomSource, generator: &generator)
        decoder = FirstStageDecoder(config, randomSource: randomSource, generator: &generator)
        quantize = VectorQuantizer(codes: config.nEmbed, dimension: config.embedDim, generator: &generator)
        quantConv = Conv2d(config.zChannels, config.embedDim, kernelSize: 1, generator: &generator)
        postQuantConv = Conv2d(config.embedDim, config.zChannels, kernelSize: 1, generator: &generator)
    }

    /// The pre-quantisation latent h = quant_conv(encoder(x)).
    public func encode(_ x: Tensor) -> Tensor { quantConv(encoder(x)) }

    /// Quantises h and decodes it; returns the image and the quantiser's loss and statistics.
    public func decode(_ h: Tensor) -> (image: Tensor, quantization: VectorQuantizer.Output) {
        let q = quantize(h)
        return (decoder(postQuantConv(q.quantized)), q)
    }

    public var lastLayerWeight: Tensor { decoder.lastLayerWeight }

    public func reconstruct(_ x: Tensor) -> Tensor { decode(encode(x)).image }
}
