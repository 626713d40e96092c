import Diffusion
import Distributed
import Foundation
import Models
import Tensor

/// Sampling images from a latent diffusion model and decoding them with its first stage,
/// shared by the trainer's grids and `ldm sample`.
///
/// Sample i (a global index) draws z_T and every step's noise from its own stream,
/// RandomGenerator(seed).derived(i), so it does not depend on the batch or the rank that made it.
public struct LatentDiffusionSampling {
    public enum Kind: String, Sendable { case ddim, ddpm }

    public var kind: Kind = .ddim
    public var steps = 50
    public var eta: Double = 0
    public var guidance: Float = 3
    public var seed: UInt64 = 0
    /// Samples per denoiser call (guidance doubles it).
    public var batchSize = 32

    public init() {}

    public func sampler(for schedule: NoiseSchedule) throws -> DiffusionSampler {
        switch kind {
        case .ddim: return try DDIMSampler(schedule: schedule, steps: steps, eta: eta)
        case .ddpm: return DDPMSampler(schedule: schedule)
        }
    }

    /// Latents (scaled, as the model sees them) for global sample indices `indices` with
    /// class `labels` or `captions` (both nil: unconditional) and, for a concat model, the
    /// `spatial` condition of each sample. `progress` gets (samples done, total).
    public func sampleLatents(_ model: LatentDiffusion, latentShape: [Int], indices: [Int], labels: [Int]?,
                              captions: [String]? = nil, spatial: Tensor? = nil, known: KnownLatents? = nil,
                              progress: ((Int, Int) -> Void)? = nil) throws -> Tensor {
        precondition(labels == nil || labels!.count == indices.count, "one label per sample")
        precondition(captions == nil || captions!.count == indices.count, "one caption per sample")
        precondition(spatial == nil || spatial!.shape[0] == indices.count, "one spatial condition per sample")
        let sampler = try sampler(for: model.schedule)
        var parts: [Tensor] = []
        var done = 0
        model.eval()
        defer { model.train() }
        // The weights stay as they are for the whole run: each is reordered once, not once a step.
        try WeightLayoutCache.scoped { for start in stride(from: 0, to: indices.count, by: batchSize) {
            let chunk = Array(indices[start..<min(start + batchSize, indices.count)])
            var generators = chunk.map { RandomGenerator(seed: seed).derived(UInt64($0)) }
            let xT = ReverseDiffusion.perSampleNoise(like: Tensor(uninitialized: [chunk.count] + latentShape), generators: &generators)
            let conditions = ConditionBatch(count: chunk.count, labels: labels.map { Array($0[start..<start + chunk.count]) },
                                            captions: captions.map { Array($0[start..<start + chunk.count]) },
                                            spatial: spatial.map { $0.slice(alongAxis: 0, start..<start + chunk.count) })
            let denoiser = try withoutGrad { try model.denoiser(conditions: conditions, guidanceScale: guidance) }
            parts.append(ReverseDiffusion.sample(sampler, from: xT, parameterization: model.config.parameterization,
                                                 generators: &generators, model: denoiser,
                                                 known: known?.slice(start..<start + chunk.count)))
            done += chunk.count
            progress?(done, indices.count)
        } }
        return parts.count == 1 ? parts[0] : Tensor.concatenate(parts, alongAxis: 0)
    }

    /// Images in [−1, 1] from scaled latents: z / scale_factor through the first stage.
    public static func decode(_ latents: Tensor, scaleFactor: Float, firstStage: FirstStageModel, batchSize: Int = 64) -> Tensor {
        firstStage.module.eval()
        return WeightLayoutCache.scoped { withoutGrad {
            var parts: [Tensor] = []
            for start in stride(from: 0, to: latents.shape[0], by: batchSize) {
                let z = latents.slice(alongAxis: 0, start..<min(start + batchSize, latents.shape[0])) * (1 / scaleFactor)
                parts.append(firstStage.decode(z).clamped(min: -1, max: 1))
            }
            return parts.count == 1 ? parts[0] : Tensor.concatenate(parts, alongAxis: 0)
        } }
    }
}
