import Diffusion
import Foundation

/// How the model is conditioned (the reference's `conditioning_key` and `cond_stage_config`).
public struct ConditioningConfig: Codable, Equatable, Sendable {
    public enum Key: String, Codable, Sendable {
        /// Unconditional.
        case none
        /// A ClassEmbedder context for cross-attention.
        case crossattn
        /// A label embedding added to the time embedding.
        case adm
    }

    public var key: Key = .crossattn
    /// Classes of a class-conditional model (a null class is added for guidance).
    public var numClasses: Int?
    /// Width of the ClassEmbedder's token; default: the UNet's context_dim.
    public var embedDim: Int?
    /// Probability of replacing a sample's condition by the null condition in training
    /// (classifier-free guidance; 0 trains a model that cannot be guided).
    public var ucgRate: Double = 0.1

    public init() {}

    enum CodingKeys: String, CodingKey {
        case key
        case numClasses = "num_classes", embedDim = "embed_dim", ucgRate = "ucg_rate"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        key = try c.decodeIfPresent(Key.self, forKey: .key) ?? .crossattn
        numClasses = try c.decodeIfPresent(Int.self, forKey: .numClasses)
        embedDim = try c.decodeIfPresent(Int.self, forKey: .embedDim)
        ucgRate = try c.decodeIfPresent(Double.self, forKey: .ucgRate) ?? 0.1
    }

    public var isClassConditional: Bool { key != .none }
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
        case .crossattn:
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
        if let n = c.numClasses, n < 1 { errors.append("\(p).conditioning.num_classes must be positive, got \(n)") }
        if !(scaleFactor > 0 && scaleFactor.isFinite) { errors.append("\(p).scale_factor must be a positive number, got \(scaleFactor)") }
        return errors
    }
}
