import Diffusion
import Foundation

/// The text encoder τ_θ of a text-conditional model (the reference's `BERTEmbedder`
/// arguments): its width is the UNet's context_dim.
public struct TextEncoderConfig: Codable, Equatable, Sendable {
    /// The WordPiece vocab.txt training reads (a saved model carries its vocabulary).
    public var vocab: String = WordPieceVocabulary.defaultPath
    /// Rows of the token embedding: the vocabulary's size (30522 for bert-base-uncased).
    public var vocabSize = 30522
    /// Context length L: [CLS] + up to L − 2 pieces + [SEP], padded.
    public var maxSeqLen = 77
    /// Transformer layers (n_layer), heads and channels per head.
    public var nLayer = 4
    public var heads = 8
    public var dimHead = 64

    public init() {}

    enum CodingKeys: String, CodingKey {
        case vocab, heads
        case vocabSize = "vocab_size", maxSeqLen = "max_seq_len", nLayer = "n_layer", dimHead = "dim_head"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = TextEncoderConfig()
        vocab = try c.decodeIfPresent(String.self, forKey: .vocab) ?? d.vocab
        vocabSize = try c.decodeIfPresent(Int.self, forKey: .vocabSize) ?? d.vocabSize
        maxSeqLen = try c.decodeIfPresent(Int.self, forKey: .maxSeqLen) ?? d.maxSeqLen
        nLayer = try c.decodeIfPresent(Int.self, forKey: .nLayer) ?? d.nLayer
        heads = try c.decodeIfPresent(Int.self, forKey: .heads) ?? d.heads
        dimHead = try c.decodeIfPresent(Int.self, forKey: .dimHead) ?? d.dimHead
    }

    func validationErrors(prefix p: String) -> [String] {
        var errors: [String] = []
        if vocabSize < 5 { errors.append("\(p).vocab_size must be at least 5 ([PAD], [UNK], [CLS], [SEP] and a word), got \(vocabSize)") }
        if maxSeqLen < 2 { errors.append("\(p).max_seq_len must be at least 2 ([CLS] and [SEP]), got \(maxSeqLen)") }
        if nLayer < 1 { errors.append("\(p).n_layer must be at least 1, got \(nLayer)") }
        if heads < 1 || dimHead < 1 { errors.append("\(p).heads and \(p).dim_head must be positive, got \(heads) and \(dimHead)") }
        return errors
    }
}

/// How the model is conditioned (the reference's `conditioning_key` and `cond_stage_config`).
public struct ConditioningConfig: Codable, Equatable, Sendable {
    public enum Key: String, Codable, Sendable {
        /// Unconditional.
        case none
        /// A context for cross-attention (class token or text, per `encoder`).
        case crossattn
        /// A label embedding added to the time embedding.
        case adm
        /// A spatially aligned input (`spatial`) joined to z_t on the channels.
        case concat
        /// Both: a concatenated input and a cross-attention context.
        case hybrid
    }

    /// What makes the cross-attention context.
    public enum Encoder: String, Codable, Sendable {
        /// A ClassEmbedder token per label.
        case `class`
        /// A TextTransformer over the caption's WordPiece ids.
        case text
    }

    public var key: Key = .crossattn
    public var encoder: Encoder = .class
    /// Classes of a class-conditional model (a null class is added for guidance).
    public var numClasses: Int?
    /// Width of the ClassEmbedder's token; default: the UNet's context_dim.
    public var embedDim: Int?
    /// The text encoder (encoder: text).
    public var text: TextEncoderConfig?
    /// Probability of replacing a sample's condition by the null condition in training
    /// (classifier-free guidance; 0 trains a model that cannot be guided). Only the class or
    /// text condition is dropped: a concatenated input is always given.
    public var ucgRate: Double = 0.1
    /// The concatenated input (key concat or hybrid).
    public var spatial: SpatialConditionConfig?

    public init() {}

    enum CodingKeys: String, CodingKey {
        case key, encoder, text, spatial
        case numClasses = "num_classes", embedDim = "embed_dim", ucgRate = "ucg_rate"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        key = try c.decodeIfPresent(Key.self, forKey: .key) ?? .crossattn
        encoder = try c.decodeIfPresent(Encoder.self, forKey: .encoder) ?? .class
        numClasses = try c.decodeIfPresent(Int.self, forKey: .numClasses)
        embedDim = try c.decodeIfPresent(Int.self, forKey: .embedDim)
        text = try c.decodeIfPresent(TextEncoderConfig.self, forKey: .text)
        ucgRate = try c.decodeIfPresent(Double.self, forKey: .ucgRate) ?? 0.1
        spatial = try c.decodeIfPresent(SpatialConditionConfig.self, forKey: .spatial)
    }

    /// Whether any condition reaches the UNet.
    public var isConditional: Bool { key != .none }
    /// A cross-attention context (class token or text) reaches the UNet.
    public var usesCrossAttention: Bool { key == .crossattn || key == .hybrid }
    /// A spatial input is joined to z_t.
    public var usesConcat: Bool { key == .concat || key == .hybrid }
    /// A class or text condition that training drops (ucg_rate) and sampling can guide.
    public var isGuidable: Bool { key == .adm || usesCrossAttention }
    /// Conditioned on class labels (a ClassEmbedder token or the adm label embedding).
    public var isClassConditional: Bool { key == .adm || usesCrossAttention && encoder == .class }
    /// Conditioned on captions through the text encoder.
    public var isTextConditional: Bool { usesCrossAttention && encoder == .text }
    /// The text encoder's settings (defaults when the section is absent).
    public var textEncoder: TextEncoderConfig { text ?? TextEncoderConfig() }
}

/// Everything that defines a latent diffusion model (saved in its weights file's metadata so
/// sampling can rebuild it): UNet, conditioning, noise schedule, parameterization and the
/// latent scale factor.
public struct LatentDiffusionConfig: Codable, Equatable, Sendable {
    public var unet = UNetConfig()
    public var conditioning = ConditioningConfig()
    public var schedule = NoiseScheduleConfig()
    public var parameterization: Parameterization = .eps
    /// z = scale_factor · E(x). Computed as 1/std(z) from the first global batch when
    /// `scale_by_std` (then this value is only the initial one), else used as given.
    public var scaleFactor: Float = 1
    public var scaleByStd: Bool = true

    public init() {}

    enum CodingKeys: String, CodingKey {
        case unet, conditioning, schedule, parameterization
        case scaleFactor = "scale_factor", scaleByStd = "scale_by_std"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        unet = try c.decodeIfPresent(UNetConfig.self, forKey: .unet) ?? UNetConfig()
        conditioning = try c.decodeIfPresent(ConditioningConfig.self, forKey: .conditioning) ?? ConditioningConfig()
        schedule = try c.decodeIfPresent(NoiseScheduleConfig.self, forKey: .schedule) ?? NoiseScheduleConfig()
        parameterization = try c.decodeIfPresent(Parameterization.self, forKey: .parameterization) ?? .eps
        scaleFactor = try c.decodeIfPresent(Float.self, forKey: .scaleFactor) ?? 1
        scaleByStd = try c.decodeIfPresent(Bool.self, forKey: .scaleByStd) ?? true
    }

    /// The UNet as built: the `adm` path gets num_classes = classes + 1 (the null class).
    public var effectiveUNet: UNetConfig {
        var u = unet
        if conditioning.key == .adm, let n = conditioning.numClasses { u.numClasses = n + 1 }
        return u
    }

    public func validationErrors(prefix p: String = "model") -> [String] {
        var errors = effectiveUNet.validationErrors(prefix: "\(p).unet")
        errors += schedule.validationErrors(prefix: "\(p).schedule")
        let c = conditioning
        if !(0..<1).contains(c.ucgRate) { errors.append("\(p).conditioning.ucg_rate must be in [0, 1), got \(c.ucgRate)") }
        switch c.key {
        case .none:
            if unet.contextDim != nil { errors.append("\(p).unet.context_dim is set but \(p).conditioning.key is none: nothing provides a context") }
            if unet.numClasses != nil { errors.append("\(p).unet.num_classes is set but \(p).conditioning.key is none") }
        case .concat:
            if unet.contextDim != nil { errors.append("\(p).unet.context_dim is set but key concat has no context (use key hybrid for both)") }
            if unet.numClasses != nil { errors.append("\(p).unet.num_classes is for key adm") }
            if c.numClasses != nil || c.text != nil {
                errors.append("\(p).conditioning.num_classes/text are for a cross-attention context: use key hybrid to add one to the concatenated input")
            }
        case .crossattn where c.encoder == .text, .hybrid where c.encoder == .text:
            if unet.contextDim == nil { errors.append("\(p).unet.context_dim is required for a text encoder (its width)") }
            if c.numClasses != nil { errors.append("\(p).conditioning.num_classes is for encoder class; a text model is conditioned on captions") }
            if unet.numClasses != nil { errors.append("\(p).unet.num_classes is for key adm") }
            errors += c.textEncoder.validationErrors(prefix: "\(p).conditioning.text")
        case .crossattn, .hybrid:
            if c.text != nil { errors.append("\(p).conditioning.text is set but conditioning.encoder is class: set encoder: text") }
            if c.numClasses == nil { errors.append("\(p).conditioning.num_classes is required for key crossattn") }
            guard let d = unet.contextDim else {
                errors.append("\(p).unet.context_dim is required for key crossattn (the ClassEmbedder's width)")
                break
            }
            if let e = c.embedDim, e != d { errors.append("\(p).conditioning.embed_dim \(e) differs from \(p).unet.context_dim \(d)") }
            if unet.numClasses != nil { errors.append("\(p).unet.num_classes is for key adm; crossattn uses \(p).conditioning.num_classes") }
        case .adm:
            if c.numClasses == nil { errors.append("\(p).conditioning.num_classes is required for key adm") }
            if unet.numClasses != nil { errors.append("\(p).unet.num_classes is derived from \(p).conditioning.num_classes for key adm (+1 null class): leave it unset") }
            if unet.contextDim != nil { errors.append("\(p).unet.context_dim is set but key adm provides no context") }
        }
        if c.usesConcat {
            if let spatial = c.spatial { errors += spatial.validationErrors(prefix: "\(p).conditioning.spatial") }
            else { errors.append("\(p).conditioning.spatial is required for key \(c.key.rawValue) (task: super-resolution or inpainting)") }
        } else if c.spatial != nil {
            errors.append("\(p).conditioning.spatial is set but key is \(c.key.rawValue): use key concat (or hybrid) to concatenate it")
        }
        if c.encoder == .text && !c.usesCrossAttention { errors.append("\(p).conditioning.encoder text needs key crossattn (the text is a context) or hybrid, got \(c.key.rawValue)") }
        if let n = c.numClasses, n < 1 { errors.append("\(p).conditioning.num_classes must be positive, got \(n)") }
        if !(scaleFactor > 0 && scaleFactor.isFinite) { errors.append("\(p).scale_factor must be a positive number, got \(scaleFactor)") }
        return errors
    }
}
