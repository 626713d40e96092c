import NN
import Tensor

/// The time-conditional UNet ε_θ(z_t, t, c) of the LDM paper (the reference's `UNetModel`):
/// time_embed MLP (+ label_emb for the `adm` path), input_blocks down to the lowest
/// resolution, middle_block (Res, Attn, Res), output_blocks on concat(h, skip) with upsampling,
/// then `out` (GN, SiLU, zero-initialised conv3). State-dict keys are the reference's.
public final class UNetModel: Module {
    public let config: UNetConfig
    let timeEmbed0: Linear
    let timeEmbed2: Linear
    let labelEmb: Embedding?
    let inputBlocks: [UNetBlock]
    let middleBlock: UNetBlock
    let outputBlocks: [UNetBlock]
    let outNorm: GroupNorm
    let outConv: Conv2d
    /// Where dropout layers draw their masks (saved with training state).
    public let randomSource: RandomSource

    override public class var keyOverrides: [String: String] {
        ["timeEmbed0": "time_embed.0", "timeEmbed2": "time_embed.2", "outNorm": "out.0", "outConv": "out.2"]
    }

    public init(_ config: UNetConfig, generator: inout RandomGenerator) {
        let problems = config.validationErrors()
        precondition(problems.isEmpty, "invalid UNet config:\n  " + problems.joined(separator: "\n  "))
        self.config = config
        let mc = config.modelChannels, ted = config.timeEmbedDim
        let source = RandomSource(seed: generator.next())
        randomSource = source
        timeEmbed0 = Linear(mc, ted, generator: &generator)
        timeEmbed2 = Linear(ted, ted, generator: &generator)
        labelEmb = config.numClasses.map { Embedding($0, ted, generator: &generator) }

        func attention(_ ch: Int, generator: inout RandomGenerator) -> any UNetLayer {
            let (heads, dimHead) = config.heads(channels: ch)
            if config.useSpatialTransformer {
                return SpatialTransformer(channels: ch, heads: heads, headChannels: dimHead, depth: config.transformerDepth,
                                          contextDim: config.contextDim, generator: &generator)
            }
            return AttentionBlock(channels: ch, heads: heads, newOrder: config.useNewAttentionOrder, generator: &generator)
        }
        func resBlock(_ ch: Int, _ out: Int, generator: inout RandomGenerator) -> UNetResBlock {
            UNetResBlock(channels: ch, embeddingChannels: ted, outChannels: out, dropout: config.dropout,
                         useScaleShiftNorm: config.useScaleShiftNorm, randomSource: source, generator: &generator)
        }

        var inputs: [UNetBlock] = [UNetBlock([Conv2d(config.inChannels, mc, kernelSize: 3, padding: 1, generator: &generator)])]
        var skipChannels = [mc]
        var ch = mc, ds = 1
        for (level, mult) in config.channelMult.enumerated() {
            for _ in 0..<config.numResBlocks {
                var layers: [any UNetLayer] = [resBlock(ch, mult * mc, generator: &generator)]
                ch = mult * mc
                if config.attentionResolutions.contains(ds) { layers.append(attention(ch, generator: &generator)) }
                inputs.append(UNetBlock(layers))
                skipChannels.append(ch)
            }
            if level != config.channelMult.count - 1 {
                inputs.append(UNetBlock([UNetDownsample(channels: ch, useConv: config.convResample, generator: &generator)]))
                skipChannels.append(ch)
                ds *= 2
            }
        }
        inputBlocks = inputs
        middleBlock = UNetBlock([resBlock(ch, ch, generator: &generator), attention(ch, generator: &generator),
                                 resBlock(ch, ch, generator: &generator)])
        var outputs: [UNetBlock] = []
        for (level, mult) in config.channelMult.enumerated().reversed() {
            for i in 0...config.numResBlocks {
                let skip = skipChannels.removeLast()
                var layers: [any UNetLayer] = [resBlock(ch + skip, mc * mult, generator: &generator)]
                ch = mc * mult
                if config.attentionResolutions.contains(ds) { layers.append(attention(ch, generator: &generator)) }
                if level > 0 && i == config.numResBlocks {
                    layers.append(UNetUpsample(channels: ch, useConv: config.convResample, generator: &generator))
                    ds /= 2
                }
                outputs.append(UNetBlock(layers))
            }
        }
        outputBlocks = outputs
        outNorm = unetNormalization(ch)
        // The reference builds this conv from model_channels, which is ch whenever channel_mult[0] = 1.
        outConv = Conv2d(ch, config.outChannels, kernelSize: 3, padding: 1, generator: &generator)
        outConv.zeroInitialize()
    }

    /// ε (or v) for z_t [B, in_channels, h, w] at `timesteps` [B], with the cross-attention
    /// `context` and, for the adm path, class labels `y` [B].
    public func callAsFunction(_ x: Tensor, timesteps: [Double], context: CrossAttentionContext? = nil,
                               y: [Int]? = nil) -> Tensor {
        precondition(x.rank == 4 && x.shape[1] == config.inChannels,
                     "UNet: input \(x.shape), expected [B, \(config.inChannels), h, w]")
        let f = config.downsamplingFactor
        precondition(x.shape[2] % f == 0 && x.shape[3] % f == 0,
                     "UNet: latent \(x.shape[2])×\(x.shape[3]) is not divisible by the UNet's downsampling factor \(f)")
        precondition(timesteps.count == x.shape[0], "UNet: \(timesteps.count) timesteps for a batch of \(x.shape[0])")
        precondition((y != nil) == (labelEmb != nil),
                     labelEmb == nil ? "UNet: class labels given to a model without num_classes" : "UNet: this model needs class labels y")
        if let context {
            precondition(config.contextDim != nil, "UNet: a context given to a model without context_dim")
            precondition(context.tokens.shape[0] == x.shape[0], "UNet: context batch \(context.tokens.shape[0]) for a batch of \(x.shape[0])")
        }
        var emb = timeEmbed2(timeEmbed0(timestepEmbedding(timesteps, dimension: config.modelChannels)).silu())
        if let labelEmb, let y { emb = emb + labelEmb(y) }
        let embedding = emb.silu()
        var h = x
        var skips: [Tensor] = []
        for block in inputBlocks {
            h = block.forward(h, embedding: embedding, context: context)
            skips.append(h)
        }
        h = middleBlock.forward(h, embedding: embedding, context: context)
        for block in outputBlocks {
            h = block.forward(Tensor.concatenate([h, skips.removeLast()], alongAxis: 1), embedding: embedding, context: context)
        }
        return outConv(outNorm.applyingSiLU(h))
    }
}
