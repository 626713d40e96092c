import Foundation

/// How β_t grows over the T forward steps. Names follow the reference's `make_beta_schedule`
/// (ldm/modules/diffusionmodules/util.py), so a reference config's `beta_schedule` means here
/// what it means there.
public enum BetaSchedule: String, Codable, Sendable, CaseIterable {
    /// LDM's "linear": β = linspace(√β₀, √β₁, T)² (diffusers: "scaled_linear").
    case linear
    /// diffusers' name for the same schedule.
    case scaledLinear = "scaled_linear"
    /// DDPM's linear schedule, β = linspace(β₀, β₁, T) (the reference calls it "sqrt_linear").
    case sqrtLinear = "sqrt_linear"
    /// β = linspace(β₀, β₁, T)^½ (the reference's "sqrt").
    case sqrt
    /// Nichol & Dhariwal's cosine ᾱ(t) = cos²((t/T + s)/(1 + s)·π/2), β clipped to 0.999.
    case cosine
}

/// β, α and ᾱ = Πα of a discrete forward process q(z_t | z_0) = N(√ᾱ_t z_0, (1 − ᾱ_t) I),
/// computed in Float64 as the reference does. The one value training's q_sample and every
/// sampler read, so they cannot disagree.
public struct NoiseSchedule: Equatable, Sendable {
    public let kind: BetaSchedule
    public let betas: [Double]
    public let alphasCumprod: [Double]
    /// ᾱ_{t−1}, with ᾱ_{−1} = 1 (for the DDPM posterior).
    public let alphasCumprodPrevious: [Double]

    public var timesteps: Int { betas.count }

    /// - Parameters: `linearStart`/`linearEnd` are β₀ and β_{T−1} for the linear kinds;
    ///   `cosineS` the cosine schedule's offset s.
    public init(_ kind: BetaSchedule, timesteps: Int = 1000, linearStart: Double = 1e-4, linearEnd: Double = 2e-2,
                cosineS: Double = 8e-3) {
        precondition(timesteps >= 1, "a noise schedule needs at least one timestep, got \(timesteps)")
        self.kind = kind
        let n = timesteps
        func linspace(_ a: Double, _ b: Double) -> [Double] {
            n == 1 ? [a] : (0..<n).map { a + (b - a) * Double($0) / Double(n - 1) }
        }
        var betas: [Double]
        switch kind {
        case .linear, .scaledLinear:
            betas = linspace(linearStart.squareRoot(), linearEnd.squareRoot()).map { $0 * $0 }
        case .sqrtLinear:
            betas = linspace(linearStart, linearEnd)
        case .sqrt:
            betas = linspace(linearStart, linearEnd).map { $0.squareRoot() }
        case .cosine:
            let f = (0...n).map { i -> Double in
                let x = (Double(i) / Double(n) + cosineS) / (1 + cosineS) * Double.pi / 2
                return cos(x) * cos(x)
            }
            betas = (0..<n).map { min(max(1 - f[$0 + 1] / f[$0], 0), 0.999) }
        }
        self.betas = betas
        var product = 1.0
        var cumulative: [Double] = []
        cumulative.reserveCapacity(n)
        for b in betas {
            product *= 1 - b
            cumulative.append(product)
        }
        alphasCumprod = cumulative
        alphasCumprodPrevious = [1] + cumulative.dropLast()
    }

    /// Reads the schedule's parameters from a validated config.
    public init(_ config: NoiseScheduleConfig) {
        self.init(config.betaSchedule, timesteps: config.timesteps, linearStart: config.linearStart,
                  linearEnd: config.linearEnd, cosineS: config.cosineS)
    }

    /// √ᾱ_t and √(1 − ᾱ_t): the signal and noise scales at step t.
    public func signalAndNoiseScale(_ t: Int) -> (signal: Double, noise: Double) {
        precondition(t >= 0 && t < timesteps, "timestep \(t) outside 0..<\(timesteps)")
        return (alphasCumprod[t].squareRoot(), (1 - alphasCumprod[t]).squareRoot())
    }

    /// Variance of the DDPM posterior q(z_{t−1} | z_t, z_0): β_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t).
    public func posteriorVariance(_ t: Int) -> Double {
        betas[t] * (1 - alphasCumprodPrevious[t]) / (1 - alphasCumprod[t])
    }

    /// The coefficients of the posterior mean c₀·z_0 + c_t·z_t.
    public func posteriorMeanCoefficients(_ t: Int) -> (start: Double, current: Double) {
        let abarPrev = alphasCumprodPrevious[t], abar = alphasCumprod[t]
        return (betas[t] * abarPrev.squareRoot() / (1 - abar), (1 - abarPrev) * (1 - betas[t]).squareRoot() / (1 - abar))
    }
}

/// The schedule section of an LDM config, with the reference's key names and defaults
/// (`timesteps: 1000`, `beta_schedule: linear`, `linear_start: 0.0015`, `linear_end: 0.0195`).
public struct NoiseScheduleConfig: Codable, Equatable, Sendable {
    public var timesteps: Int = 1000
    public var betaSchedule: BetaSchedule = .linear
    public var linearStart: Double = 0.0015
    public var linearEnd: Double = 0.0195
    public var cosineS: Double = 8e-3

    public init() {}

    enum CodingKeys: String, CodingKey {
        case timesteps
        case betaSchedule = "beta_schedule", linearStart = "linear_start", linearEnd = "linear_end", cosineS = "cosine_s"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = NoiseScheduleConfig()
        timesteps = try c.decodeIfPresent(Int.self, forKey: .timesteps) ?? d.timesteps
        betaSchedule = try c.decodeIfPresent(BetaSchedule.self, forKey: .betaSchedule) ?? d.betaSchedule
        linearStart = try c.decodeIfPresent(Double.self, forKey: .linearStart) ?? d.linearStart
        linearEnd = try c.decodeIfPresent(Double.self, forKey: .linearEnd) ?? d.linearEnd
        cosineS = try c.decodeIfPresent(Double.self, forKey: .cosineS) ?? d.cosineS
    }

    public func validationErrors(prefix: String) -> [String] {
        var errors: [String] = []
        if timesteps < 1 { errors.append("\(prefix).timesteps must be at least 1, got \(timesteps)") }
        if betaSchedule != .cosine {
            if !(linearStart > 0 && linearEnd > 0 && linearStart <= linearEnd && linearEnd < 1) {
                errors.append("\(prefix).linear_start and linear_end must satisfy 0 < start ≤ end < 1, got \(linearStart), \(linearEnd)")
            }
        } else if !(cosineS >= 0) {
            errors.append("\(prefix).cosine_s must not be negative, got \(cosineS)")
        }
        return errors
    }
}
