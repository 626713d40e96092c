import NN
import Tensor

/// One resolution level of the decoder: num_res_blocks + 1 ResnetBlocks (+ attention), then
/// an Upsample. Stored at the index of its resolution level, as the reference's `up`.
final class DecoderLevel: Module {
    let block: [ResnetBlock]
    let attn: [AttnBlock]
    let upsample: Upsample?

    init(block: [ResnetBlock], attn: [AttnBlock], upsample: Upsample?) {
        self.block = block
        self.attn = attn
        self.upsample = upsample
    }
}

/// z [B, z, H/f, W/f] → x̂ [B, out, H, W]. Mirrors the encoder, without skip connections.
public final class FirstStageDecoder: Module {
    let convIn: Conv2d
    let mid: MidBlock
    let up: [DecoderLevel]
    let normOut: GroupNorm
    let convOut: Conv2d

    public init(_ config: AutoencoderConfig, randomSource: RandomSource, generator: inout RandomGenerator) {
        let levels = config.chMult.count
        var blockIn = config.ch * config.chMult[levels - 1]
        var resolution = config.latentResolution
        convIn = Conv2d(config.zChannels, blockIn, kernelSize: 3, padding: 1, generator: &generator)
        mid = MidBlock(channels: blockIn, dropout: config.dropout,
                                          randomSource: randomSource, generator: &generator)
        var built: [DecoderLevel] = []
        for i in stride(from: levels - 1, through: 0, by: -1) {
            let blockOut = config.ch * config.chMult[i]
            var blocks: [ResnetBlock] = [], attns: [AttnBlock] = []
            for _ in 0...config.numResBlocks {
                blocks.append(ResnetBlock(inChannels: blockIn, outChannels: blockOut, dropout: config.dropout,
                                          randomSource: randomSource, generator: &generator))
                blockIn = blockOut
                if config.attnResolutions.contains(resolution) { attns.append(AttnBlock(channels: blockIn, generator: &generator)) }
            }
            let upsample = i == 0 ? nil : Upsample(channels: blockIn, generator: &generator)
            if i != 0 { resolution *= 2 }
            built.insert(DecoderLevel(block: blocks, attn: attns, upsample: upsample), at: 0)
        }
        up = built
        normOut = normalize(blockIn)
        convOut = Conv2d(blockIn, config.outChannels, kernelSize: 3, padding: 1, generator: &generator)
    }

    /// The weight the adaptive GAN weight differentiates against (decoder.conv_out.weight).
    public var lastLayerWeight: Tensor { convOut.weight }

    public func callAsFunction(_ z: Tensor) -> Tensor {
        var h = mid(convIn(z))
        for level in up.reversed() {
            for (j, block) in level.block.enumerated() {
                h = block(h)
                if !level.attn.isEmpty { h = level.attn[j](h) }
            }
            if let us = level.upsample { h = us(h) }
        }
        return convOut(normOut.applyingSiLU(h))
    }
}
