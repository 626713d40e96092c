import Foundation
import Tensor

/// The denoising network as samplers see it: the model's raw output (ε or v, as trained) for
/// a batch z_t at per-sample timesteps. Conditioning is bound inside the closure.
public typealias DenoiserOutput = (_ x: Tensor, _ timesteps: [Int]) -> Tensor

/// A reverse-process sampler: the timesteps it visits and one update rule. Every sampler
/// runs through `ReverseDiffusion.sample`, so guidance, noise streams and progress are shared.
public protocol DiffusionSampler {
    var schedule: NoiseSchedule { get }
    /// Model timesteps visited, noisiest first.
    var timesteps: [Int] { get }
    /// Whether step `index` (0 = first visited) adds fresh noise.
    func addsNoise(at index: Int) -> Bool
    /// z_{prev} from z_t = `x` at step `index`, given the model's (ε̂, ẑ_0) there and the
    /// step's noise (nil when `addsNoise(at:)` is false).
    func step(_ x: Tensor, eps: Tensor, start: Tensor, index: Int, noise: Tensor?) -> Tensor
}

/// Latent entries whose value is known (inpainting: the cells the mask leaves untouched), as
/// the reference DDIM sampler's `mask` and `x0`: before every step they are replaced by the
/// known latent noised to that step, and at the end by the known latent itself.
public struct KnownLatents {
    /// z_0 of the known content, [B, C, h, w].
    public let latents: Tensor
    /// 1 where the entry is known, 0 where the model fills it; the latents' shape.
    public let keep: Tensor

    public init(latents: Tensor, keep: Tensor) {
        precondition(latents.shape == keep.shape, "known latents \(latents.shape) and their mask \(keep.shape) differ")
        self.latents = latents
        self.keep = keep
    }

    public func slice(_ range: Range<Int>) -> KnownLatents {
        KnownLatents(latents: latents.slice(alongAxis: 0, range), keep: keep.slice(alongAxis: 0, range))
    }

    /// keep ⊙ known + (1 − keep) ⊙ x.
    func imposed(_ known: Tensor, on x: Tensor) -> Tensor {
        let out = Tensor(uninitialized: x.shape)
        let (k, m, v, o) = (known.pointer, keep.pointer, x.pointer, out.pointer)
        for i in 0..<x.count { o[i] = m[i] * k[i] + (1 - m[i]) * v[i] }
        return out
    }
}

public enum ReverseDiffusion {
    /// Runs `sampler` from z_T = `start` down to z_0.
    ///
    /// `generators` holds one generator per batch entry; each sample's step noise comes from
    /// its own stream, so a sample does not depend on which batch or rank it was drawn in.
    /// `known`: entries held to known content (their forward noise drawn from the same
    /// streams). `progress` is called after every step with (steps done, total).
    public static func sample(_ sampler: DiffusionSampler, from start: Tensor, parameterization: Parameterization,
                              generators: inout [RandomGenerator], model: DenoiserOutput, known: KnownLatents? = nil,
                              progress: ((Int, Int) -> Void)? = nil) -> Tensor {
        precondition(generators.count == start.shape[0], "\(generators.count) noise streams for a batch of \(start.shape[0])")
        precondition(known == nil || known!.latents.shape == start.shape, "known latents \(known!.latents.shape) for z_T \(start.shape)")
        var x = start
        let steps = sampler.timesteps
        for (index, t) in steps.enumerated() {
            let ts = Array(repeating: t, count: x.shape[0])
            if let known {
                let noised = sampler.schedule.qSample(known.latents, timesteps: ts, noise: perSampleNoise(like: x, generators: &generators))
                x = known.imposed(noised, on: x)
            }
            let output = withoutGrad { model(x, ts) }
            precondition(output.shape == x.shape, "the denoiser returned \(output.shape) for z_t \(x.shape)")
            let (eps, x0) = sampler.schedule.prediction(output, parameterization: parameterization, noisy: x, timesteps: ts)
            let noise = sampler.addsNoise(at: index) ? perSampleNoise(like: x, generators: &generators) : nil
            x = withoutGrad { sampler.step(x, eps: eps, start: x0, index: index, noise: noise) }
            progress?(index + 1, steps.count)
        }
        if let known { x = known.imposed(known.latents, on: x) }
        return x
    }

    /// Standard normal noise shaped like `x`, row b drawn from `generators[b]`.
    public static func perSampleNoise(like x: Tensor, generators: inout [RandomGenerator]) -> Tensor {
        let noise = Tensor(uninitialized: x.shape)
        let size = x.count / max(x.shape[0], 1)
        for b in 0..<x.shape[0] {
            generators[b].fillNormal(UnsafeMutableBufferPointer(start: noise.pointer + b * size, count: size))
        }
        return noise
    }
}

