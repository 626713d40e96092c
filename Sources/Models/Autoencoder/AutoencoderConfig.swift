/// The architecture of a first-stage autoencoder: CompVis's `ddconfig` plus `embed_dim`
/// (and the codebook size for VQ). f = 2^(len(ch_mult) − 1).
public struct AutoencoderConfig: Codable, Equatable, Sendable {
    public enum Regularizer: String, Codable, Sendable { case kl, vq }

    public var regularizer: Regularizer = .kl
    public var resolution: Int = 32
    public var inChannels: Int = 1
    public var outChannels: Int = 1
    public var ch: Int = 64
    public var chMult: [Int] = [1, 2, 4]
    public var numResBlocks: Int = 2
    public var attnResolutions: [Int] = []
    public var zChannels: Int = 4
    public var embedDim: Int = 4
    public var dropout: Float = 0
    /// VQ only: number of codebook entries.
    public var nEmbed: Int = 8192

    public init() {}

    enum CodingKeys: String, CodingKey {
        case regularizer, resolution, ch, dropout
        case inChannels = "in_channels", outChannels = "out_ch", chMult = "ch_mult"
        case numResBlocks = "num_res_blocks", attnResolutions = "attn_resolutions"
        case zChannels = "z_channels", embedDim = "embed_dim", nEmbed = "n_embed"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = AutoencoderConfig()
        regularizer = try c.decodeIfPresent(Regularizer.self, forKey: .regularizer) ?? d.regularizer
        resolution = try c.decodeIfPresent(Int.self, forKey: .resolution) ?? d.resolution
        inChannels = try c.decodeIfPresent(Int.self, forKey: .inChannels) ?? d.inChannels
        outChannels = try c.decodeIfPresent(Int.self, forKey: .outChannels) ?? inChannels
        ch = try c.decodeIfPresent(Int.self, forKey: .ch) ?? d.ch
        chMult = try c.decodeIfPresent([Int].self, forKey: .chMult) ?? d.chMult
        numResBlocks = try c.decodeIfPresent(Int.self, forKey: .numResBlocks) ?? d.numResBlocks
        attnResolutions = try c.decodeIfPresent([Int].self, forKey: .attnResolutions) ?? d.attnResolutions
        zChannels = try c.decodeIfPresent(Int.self, forKey: .zChannels) ?? d.zChannels
        embedDim = try c.decodeIfPresent(Int.self, forKey: .embedDim) ?? zChannels
        dropout = try c.decodeIfPresent(Float.self, forKey: .dropout) ?? d.dropout
        nEmbed = try c.decodeIfPresent(Int.self, forKey: .nEmbed) ?? d.nEmbed
    }

    /// The downsampling factor f.
    public var downsamplingFactor: Int { 1 << (chMult.count - 1) }
    /// The latent's spatial size for `resolution` inputs.
    public var latentResolution: Int { resolution / downsamplingFactor }

    /// Every reason this configuration cannot be built, as messages naming the key.
    public func validationErrors() -> [String] {
        var errors: [String] = []
        if chMult.isEmpty { errors.append("ch_mult must have at least one entry") }
        if ch <= 0 || ch % 32 != 0 { errors.append("ch must be a positive multiple of 32 (GroupNorm uses 32 groups), got \(ch)") }
        if chMult.contains(where: { $0 <= 0 }) { errors.append("ch_mult entries must be positive, got \(chMult)") }
        if !chMult.isEmpty && resolution % downsamplingFactor != 0 {
            errors.append("resolution \(resolution) is not divisible by the downsampling factor f = \(downsamplingFactor) (ch_mult has \(chMult.count) levels)")
        }
        if ![1, 3].contains(inChannels) { errors.append("in_channels must be 1 (grey) or 3 (RGB), got \(inChannels)") }
        if ![1, 3].contains(outChannels) { errors.append("out_ch must be 1 or 3, got \(outChannels)") }
        if numResBlocks <= 0 { errors.append("num_res_blocks must be positive") }
        if zChannels <= 0 || embedDim <= 0 { errors.append("z_channels and embed_dim must be positive") }
        if regularizer == .vq && nEmbed <= 1 { errors.append("n_embed must be at least 2 for a VQ autoencoder") }
        if !(0..<1).contains(dropout) { errors.append("dropout must be in [0, 1), got \(dropout)") }
        return errors
    }
}
