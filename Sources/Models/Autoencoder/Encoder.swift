import NN
import Tensor

/// One resolution level of the encoder: ResnetBlocks (+ attention), then a Downsample.
final class EncoderLevel: Module {
    let block: [ResnetBlock]
    let attn: [AttnBlock]
    let downsample: Downsample?

    init(block: [ResnetBlock], attn: [AttnBlock], downsample: Downsample?) {
        self.block = block
        self.attn = attn
        self.downsample = downsample
    }
}

/// x [B, in, H, W] → moments [B, 2·z (KL) or z (VQ), H/f, W/f].
public final class FirstStageEncoder: Module {
    let convIn: Conv2d
    let down: [EncoderLevel]
    let mid: MidBlock
    let normOut: GroupNorm
    let convOut: Conv2d

    public init(_ config: AutoencoderConfig, doubleZ: Bool, randomSource: RandomSource, generator: inout RandomGenerator) {
        convIn = Conv2d(config.inChannels, config.ch, kernelSize: 3, padding: 1, generator: &generator)
        var levels: [EncoderLevel] = []
        var resolution = config.resolution
        let inMult = [1] + config.chMult
        var blockIn = config.ch
        for (i, mult) in config.chMult.enumerated() {
            blockIn = config.ch * inMult[i]
            let blockOut = config.ch * mult
            var blocks: [ResnetBlock] = [], attns: [AttnBlock] = []
            for _ in 0..<config.numResBlocks {
                blocks.append(ResnetBlock(inChannels: blockIn, outChannels: blockOut, dropout: config.dropout,
                                          randomSource: randomSource, generator: &generator))
                blockIn = blockOut
                if config.attnResolutions.contains(resolution) { attns.append(AttnBlock(channels: blockIn, generator: &generator)) }
            }
            let isLast = i == config.chMult.count - 1
            levels.append(EncoderLevel(block: blocks, attn: attns,
                                       downsample: isLast ? nil : Downsample(channels: blockIn, generator: &generator)))
            if !isLast { resolution /= 2 }
        }
        down = levels
        mid = MidBlock(channels: blockIn, dropout: config.dropout,
                                          randomSource: randomSource, generator: &generator)
        normOut = normalize(blockIn)
        convOut = Conv2d(blockIn, doubleZ ? 2 * config.zChannels : config.zChannels, kernelSize: 3, padding: 1,
                         generator: &generator)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        var h = convIn(x)
        for level in down {
            for (j, block) in level.block.enumerated() {
                h = block(h)
                if !level.attn.isEmpty { h = level.attn[j](h) }
            }
            if let ds = level.downsample { h = ds(h) }
        }
        h = mid(h)
        return convOut(normOut.applyingSiLU(h))
    }
}
