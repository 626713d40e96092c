/// How latent values are stored on disk.
public enum LatentDType: String, Codable, CaseIterable, Sendable {
    case float16 = "fp16"
    case float32 = "fp32"

    public var byteCount: Int { self == .float16 ? 2 : 4 }
    var code: UInt8 { self == .float16 ? 1 : 0 }
    init?(code: UInt8) {
        switch code {
        case 0: self = .float32
        case 1: self = .float16
        default: return nil
        }
    }
}

/// What each sample's latent record holds.
public enum StoredLatent: String, Codable, Sendable {
    /// The KL posterior N(μ, σ²) as μ and log σ² (each [C, h, w]), so training draws a fresh
    /// z = μ + σ·ε every epoch instead of reusing one frozen sample.
    case meanAndLogVariance = "mean_logvar"
    /// The VQ encoder's pre-quantisation latent (quantisation happens in the decoder's path).
    case latent

    /// Float tensors per sample.
    public var fieldCount: Int { self == .meanAndLogVariance ? 2 : 1 }
    var code: UInt8 { self == .meanAndLogVariance ? 0 : 1 }
    init?(code: UInt8) {
        switch code {
        case 0: self = .meanAndLogVariance
        case 1: self = .latent
        default: return nil
        }
    }
}
