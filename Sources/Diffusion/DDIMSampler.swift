import Foundation
import Tensor

/// DDIM (Song et al. 2021) with the reference's uniform step selection (ldm/models/diffusion/
/// ddim.py): c = T / S, steps range(0, T, c) + 1, ᾱ_prev of the first step = ᾱ_0, and
/// σ = η·√((1 − ᾱ_prev)/(1 − ᾱ)·(1 − ᾱ/ᾱ_prev)). η = 0 is deterministic; with S = T and
/// η = 1 each step is DDPM's posterior step.
///
/// The reference's +1 offset makes the last step T when S = T (an index past the schedule);
/// here the offset is dropped when it would leave the schedule, so any 1 ≤ S ≤ T works.
public struct DDIMSampler: DiffusionSampler {
    public let schedule: NoiseSchedule
    public let eta: Double
    /// Selected steps, ascending (the reference's `ddim_timesteps`).
    public let ascendingSteps: [Int]
    public let alphas: [Double]
    public let alphasPrevious: [Double]
    public let sigmas: [Double]

    public init(schedule: NoiseSchedule, steps: Int, eta: Double = 0) throws {
        let total = schedule.timesteps
        guard steps >= 1 && steps <= total else { throw SamplerError.invalidSteps(steps: steps, timesteps: total) }
        guard eta >= 0 && eta.isFinite else { throw SamplerError.invalidEta(eta) }
        self.schedule = schedule
        self.eta = eta
        let c = total / steps
        var selected = Array(stride(from: 0, to: total, by: c))
        if selected.last! + 1 < total { selected = selected.map { $0 + 1 } }
        ascendingSteps = selected
        let abar = schedule.alphasCumprod
        alphas = selected.map { abar[$0] }
        alphasPrevious = [abar[0]] + selected.dropLast().map { abar[$0] }
        sigmas = zip(alphas, alphasPrevious).map { a, prev in
            eta * ((1 - prev) / (1 - a) * (1 - a / prev)).squareRoot()
        }
    }

    public var timesteps: [Int] { ascendingSteps.reversed() }

    public func addsNoise(at index: Int) -> Bool { sigmas[ascendingSteps.count - 1 - index] > 0 }

    public func step(_ x: Tensor, eps: Tensor, start: Tensor, index: Int, noise: Tensor?) -> Tensor {
        let i = ascendingSteps.count - 1 - index
        let prev = alphasPrevious[i], sigma = sigmas[i]
        var out = start * Float(prev.squareRoot()) + eps * Float(max(1 - prev - sigma * sigma, 0).squareRoot())
        if let noise, sigma > 0 { out = out + noise * Float(sigma) }
        return out
    }
}

/// DDPM ancestral sampling over every step T−1 … 0: z_{t−1} = μ̃(ẑ_0, z_t) + σ_t·ε with the
/// posterior variance β̃_t (no noise at t = 0), as the reference's `p_sample`.
public struct DDPMSampler: DiffusionSampler {
    public let schedule: NoiseSchedule
    /// Clamp ẑ_0 to [−1, 1] before the posterior mean (the reference's `clip_denoised`, meant
    /// for pixels; scaled latents are not bounded, so off by default).
    public let clipDenoised: Bool

    public init(schedule: NoiseSchedule, clipDenoised: Bool = false) {
        self.schedule = schedule
        self.clipDenoised = clipDenoised
    }

    public var timesteps: [Int] { Array((0..<schedule.timesteps).reversed()) }

    public func addsNoise(at index: Int) -> Bool { timesteps[index] > 0 }

    public func step(_ x: Tensor, eps: Tensor, start: Tensor, index: Int, noise: Tensor?) -> Tensor {
        let t = timesteps[index]
        let x0 = clipDenoised ? start.clamped(min: -1, max: 1) : start
        let (c0, ct) = schedule.posteriorMeanCoefficients(t)
        var out = x0 * Float(c0) + x * Float(ct)
        if let noise, t > 0 { out = out + noise * Float(schedule.posteriorVariance(t).squareRoot()) }
        return out
    }
}

public enum SamplerError: Error, CustomStringConvertible, Equatable {
    case invalidSteps(steps: Int, timesteps: Int)
    case invalidEta(Double)
    case unknownSampler(String)

    public var description: String {
        switch self {
        case .invalidSteps(let s, let t): return "--steps \(s): the sampler needs 1 ≤ steps ≤ T = \(t)"
        case .invalidEta(let e): return "--eta \(e): η must be a finite value ≥ 0"
        case .unknownSampler(let name): return "unknown sampler '\(name)' (use ddim or ddpm)"
        }
    }
}
