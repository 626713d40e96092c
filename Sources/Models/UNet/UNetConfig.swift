import Foundation

/// The reference's `UNetModel` parameters (ldm/modules/diffusionmodules/openaimodel.py), with
/// its key names and defaults, for 2-D latents.
public struct UNetConfig: Codable, Equatable, Sendable {
    public var inChannels: Int = 4
    public var outChannels: Int = 4
    public var modelChannels: Int = 64
    /// Downsampling rates ds (1, 2, 4, …) at which attention blocks are inserted.
    public var attentionResolutions: [Int] = [2, 4]
    public var numResBlocks: Int = 2
    public var channelMult: [Int] = [1, 2, 2]
    public var dropout: Float = 0
    /// Class count of the `adm` path (a label embedding added to the time embedding); nil: none.
    public var numClasses: Int?
    /// Heads per attention block (−1: from num_head_channels).
    public var numHeads: Int = -1
    /// Channels per head (−1: from num_heads).
    public var numHeadChannels: Int = -1
    public var useScaleShiftNorm: Bool = false
    /// Plain self-attention blocks in the new q/k/v channel order (false: the legacy order).
    public var useNewAttentionOrder: Bool = false
    /// SpatialTransformer (self + cross-attention) blocks instead of plain self-attention.
    public var useSpatialTransformer: Bool = false
    public var transformerDepth: Int = 1
    /// Width of the cross-attention context; nil: the transformers attend to themselves.
    public var contextDim: Int?
    /// The reference's `legacy` head rule for transformers: heads = ch / num_head_channels but
    /// d_head = ch / heads.
    public var legacy: Bool = true
    /// Conv for up/down sampling (false: average pool / nearest only).
    public var convResample: Bool = true

    public init() {}

    enum CodingKeys: String, CodingKey {
        case dropout, legacy
        case inChannels = "in_channels", outChannels = "out_channels", modelChannels = "model_channels"
        case attentionResolutions = "attention_resolutions", numResBlocks = "num_res_blocks", channelMult = "channel_mult"
        case numClasses = "num_classes", numHeads = "num_heads", numHeadChannels = "num_head_channels"
        case useScaleShiftNorm = "use_scale_shift_norm", useNewAttentionOrder = "use_new_attention_order"
        case useSpatialTransformer = "use_spatial_transformer", transformerDepth = "transformer_depth"
        case contextDim = "context_dim", convResample = "conv_resample"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = UNetConfig()
        inChannels = try c.decodeIfPresent(Int.self, forKey: .inChannels) ?? d.inChannels
        outChannels = try c.decodeIfPresent(Int.self, forKey: .outChannels) ?? d.outChannels
        modelChannels = try c.decodeIfPresent(Int.self, forKey: .modelChannels) ?? d.modelChannels
        attentionResolutions = try c.decodeIfPresent([Int].self, forKey: .attentionResolutions) ?? d.attentionResolutions
        numResBlocks = try c.decodeIfPresent(Int.self, forKey: .numResBlocks) ?? d.numResBlocks
        channelMult = try c.decodeIfPresent([Int].self, forKey: .channelMult) ?? d.channelMult
        dropout = try c.decodeIfPresent(Float.self, forKey: .dropout) ?? d.dropout
        numClasses = try c.decodeIfPresent(Int.self, forKey: .numClasses)
        numHeads = try c.decodeIfPresent(Int.self, forKey: .numHeads) ?? d.numHeads
        numHeadChannels = try c.decodeIfPresent(Int.self, forKey: .numHeadChannels) ?? d.numHeadChannels
        useScaleShiftNorm = try c.decodeIfPresent(Bool.self, forKey: .useScaleShiftNorm) ?? d.useScaleShiftNorm
        useNewAttentionOrder = try c.decodeIfPresent(Bool.self, forKey: .useNewAttentionOrder) ?? d.useNewAttentionOrder
        useSpatialTransformer = try c.decodeIfPresent(Bool.self, forKey: .useSpatialTransformer) ?? d.useSpatialTransformer
        transformerDepth = try c.decodeIfPresent(Int.self, forKey: .transformerDepth) ?? d.transformerDepth
        contextDim = try c.decodeIfPresent(Int.self, forKey: .contextDim)
        legacy = try c.decodeIfPresent(Bool.self, forKey: .legacy) ?? d.legacy
        convResample = try c.decodeIfPresent(Bool.self, forKey: .convResample) ?? d.convResample
    }

    /// Downsampling factor of the deepest level: latents must be divisible by it.
    public var downsamplingFactor: Int { 1 << max(channelMult.count - 1, 0) }
    public var timeEmbedDim: Int { 4 * modelChannels }

    /// (heads, channels per head) of an attention block over `channels`, as the reference
    /// computes them (including its `legacy` rule for transformers).
    public func heads(channels ch: Int) -> (heads: Int, headChannels: Int) {
        var heads = numHeads, dimHead: Int
        if numHeadChannels == -1 {
            dimHead = ch / max(heads, 1)
        } else {
            heads = ch / numHeadChannels
            dimHead = numHeadChannels
        }
        if legacy && useSpatialTransformer { dimHead = ch / max(heads, 1) }
        return (heads, dimHead)
    }

    /// Every channel count a GroupNorm(32) sees, with its place.
    var normalizedChannels: [Int] {
        var chans: [Int] = [modelChannels]
        var ch = modelChannels
        var skips = [ch]
        for (level, mult) in channelMult.enumerated() {
            for _ in 0..<numResBlocks { chans.append(ch); ch = mult * modelChannels; chans.append(ch); skips.append(ch) }
            if level != channelMult.count - 1 { skips.append(ch) }
        }
        for (_, mult) in channelMult.enumerated().reversed() {
            for _ in 0...numResBlocks {
                let skip = skips.popLast() ?? 0
                chans.append(ch + skip); ch = mult * modelChannels; chans.append(ch)
            }
        }
        return chans
    }

    /// Every inconsistency, as messages naming the keys.
    public func validationErrors(prefix p: String = "model.unet") -> [String] {
        var errors: [String] = []
        if inChannels < 1 || outChannels < 1 { errors.append("\(p).in_channels and out_channels must be positive") }
        if modelChannels < 1 { errors.append("\(p).model_channels must be positive") }
        if channelMult.isEmpty || channelMult.contains(where: { $0 < 1 }) {
            errors.append("\(p).channel_mult must be a non-empty list of positive multipliers, got \(channelMult)")
        }
        if numResBlocks < 1 { errors.append("\(p).num_res_blocks must be at least 1") }
        if transformerDepth < 1 { errors.append("\(p).transformer_depth must be at least 1") }
        // Bounds far above any real model, so that sizes read from a file cannot make the
        // checks below allocate without end or overflow (found by fuzzing config.json).
        if numResBlocks > 64 { errors.append("\(p).num_res_blocks must be at most 64, got \(numResBlocks)") }
        if transformerDepth > 64 { errors.append("\(p).transformer_depth must be at most 64, got \(transformerDepth)") }
        if channelMult.count > 16 || channelMult.contains(where: { $0 > 64 }) {
            errors.append("\(p).channel_mult: at most 16 levels of multipliers up to 64, got \(channelMult.count) levels")
        }
        if modelChannels > 16384 { errors.append("\(p).model_channels must be at most 16384, got \(modelChannels)") }
        if !(0..<1).contains(dropout) { errors.append("\(p).dropout must be in [0, 1), got \(dropout)") }
        if let n = numClasses, n < 1 { errors.append("\(p).num_classes must be positive, got \(n)") }
        if let d = contextDim, d < 1 { errors.append("\(p).context_dim must be positive, got \(d)") }
        if contextDim != nil && !useSpatialTransformer {
            errors.append("\(p).context_dim needs use_spatial_transformer: true (cross-attention lives in the transformer blocks)")
        }
        if numHeads == -1 && numHeadChannels == -1 { errors.append("\(p): set num_heads or num_head_channels") }
        if let bad = attentionResolutions.first(where: { $0 < 1 || $0 & ($0 - 1) != 0 }) {
            errors.append("\(p).attention_resolutions: \(bad) is not a downsampling rate (1, 2, 4, …)")
        }
        guard errors.isEmpty else { return errors }
        if let bad = normalizedChannels.first(where: { $0 % 32 != 0 }) {
            errors.append("\(p): a GroupNorm(32) would see \(bad) channels; model_channels × channel_mult (and their skip sums) must be multiples of 32")
        }
        var ds = 1
        for (level, mult) in channelMult.enumerated() {
            let ch = mult * modelChannels
            if attentionResolutions.contains(ds) {
                let (h, dh) = heads(channels: ch)
                if h < 1 || dh < 1 || h * dh != ch {
                    errors.append("\(p): attention at level \(level) has \(ch) channels, which num_heads \(numHeads) / num_head_channels \(numHeadChannels) do not split")
                }
            }
            if level != channelMult.count - 1 { ds *= 2 }
        }
        let (h, dh) = heads(channels: channelMult.last! * modelChannels)
        if h < 1 || dh < 1 || h * dh != channelMult.last! * modelChannels {
            errors.append("\(p): the middle block's attention over \(channelMult.last! * modelChannels) channels cannot be split into heads of num_heads \(numHeads) / num_head_channels \(numHeadChannels)")
        }
        return errors
    }
}
