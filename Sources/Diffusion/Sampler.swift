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

public enum ReverseDiffusion {
    /// Runs `sampler` from z_T = `start` down to z_0.
    ///
    /// `generators` holds one generator per batch entry; each sample's step noise comes from
    /// its own stream, so a sample does not depend on which batch or rank it was drawn in.
    /// `progress` is called after every step with (steps done, total).
    public static func sample(_ sampler: DiffusionSampler, from start: Tensor, parameterization: Parameterization,
                              generators: inout [RandomGenerator], model: DenoiserOutput,
                              progress: ((Int, Int) -> Void)? = nil) -> Tensor {
        precondition(generators.count == start.shape[0], "\(generators.count) noise streams for a batch of \(start.shape[0])")
        var x = start
        let steps = sampler.timesteps
        for (index, t) in steps.enumerated() {
            let ts = Array(repeating: t, count: x.shape[0])
            let output = withoutGrad { model(x, ts) }
            precondition(output.shape == x.shape, "the denoiser returned \(output.shape) for z_t \(x.shape)")
            let (eps, x0) = sampler.schedule.prediction(output, parameterization: parameterization, noisy: x, timesteps: ts)
            let noise = sampler.addsNoise(at: index) ? perSampleNoise(like: x, generators: &generators) : nil
            x = withoutGrad { sampler.step(x, eps: eps, start: x0, index: index, noise: noise) }
            progress?(index + 1, steps.count)
        }
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

