import Foundation
import Tensor

/// What the denoising network is trained to output.
public enum Parameterization: String, Codable, Sendable {
    /// The noise ε (DDPM, the LDM paper).
    case eps
    /// The velocity v = √ᾱ·ε − √(1 − ᾱ)·z_0 (Salimans & Ho).
    case v
}

extension NoiseSchedule {
    /// Per-sample coefficients [B, 1, …, 1] (one value per batch entry) shaped to broadcast
    /// against a [B, …] tensor of rank `rank`.
    func coefficients(_ t: [Int], rank: Int, _ value: (Int) -> Double) -> Tensor {
        Tensor(shape: [t.count] + Array(repeating: 1, count: max(rank - 1, 0)), scalars: t.map { Float(value($0)) })
    }

    func checkTimesteps(_ t: [Int], batch: Int) {
        precondition(t.count == batch, "\(t.count) timesteps for a batch of \(batch)")
        for (i, step) in t.enumerated() {
            precondition(step >= 0 && step < timesteps, "timestep \(step) of sample \(i) outside 0..<\(timesteps)")
        }
    }

    /// z_t = √ᾱ_t·z_0 + √(1 − ᾱ_t)·ε, per sample (the reference's `q_sample`).
    public func qSample(_ start: Tensor, timesteps t: [Int], noise: Tensor) -> Tensor {
        checkTimesteps(t, batch: start.shape[0])
        precondition(noise.shape == start.shape, "q_sample: noise \(noise.shape) for z_0 \(start.shape)")
        return coefficients(t, rank: start.rank) { self.alphasCumprod[$0].squareRoot() } * start
            + coefficients(t, rank: start.rank) { (1 - self.alphasCumprod[$0]).squareRoot() } * noise
    }

    /// The training target of `parameterization` for z_0, ε at steps t.
    public func target(_ parameterization: Parameterization, start: Tensor, noise: Tensor, timesteps t: [Int]) -> Tensor {
        switch parameterization {
        case .eps: return noise
        case .v:
            checkTimesteps(t, batch: start.shape[0])
            return coefficients(t, rank: start.rank) { self.alphasCumprod[$0].squareRoot() } * noise
                - coefficients(t, rank: start.rank) { (1 - self.alphasCumprod[$0]).squareRoot() } * start
        }
    }

    /// The network output converted to (ε̂, ẑ_0) at z_t: what every sampler works with.
    public func prediction(_ output: Tensor, parameterization: Parameterization, noisy x: Tensor,
                           timesteps t: [Int]) -> (eps: Tensor, start: Tensor) {
        checkTimesteps(t, batch: x.shape[0])
        let a = coefficients(t, rank: x.rank) { self.alphasCumprod[$0].squareRoot() }
        let s = coefficients(t, rank: x.rank) { (1 - self.alphasCumprod[$0]).squareRoot() }
        switch parameterization {
        case .eps:
            return (output, (x - s * output) / a)
        case .v:
            // ε = √ᾱ·v + √(1−ᾱ)·z_t and z_0 = √ᾱ·z_t − √(1−ᾱ)·v.
            return (a * output + s * x, a * x - s * output)
        }
    }
}

/// The LDM objective E‖target − f_θ(z_t, t, c)‖², the mean over every element (the
/// reference's `loss_simple`: the mean over C, H, W, then over the batch).
public func diffusionLoss(prediction: Tensor, target: Tensor) -> Tensor {
    precondition(prediction.shape == target.shape, "diffusion loss: prediction \(prediction.shape), target \(target.shape)")
    return (prediction - target).square().mean()
}

/// Per-sample mean squared error (for held-out loss by timestep bucket).
public func perSampleSquaredError(prediction: Tensor, target: Tensor) -> [Double] {
    precondition(prediction.shape == target.shape, "per-sample error: prediction \(prediction.shape), target \(target.shape)")
    let n = prediction.shape[0], size = prediction.count / max(n, 1)
    let p = prediction.pointer, q = target.pointer
    return (0..<n).map { b in
        var s = 0.0
        for i in b * size ..< (b + 1) * size { let d = Double(p[i] - q[i]); s += d * d }
        return s / Double(size)
    }
}
