import Checkpoint
import Data
import Distributed
import Foundation
import Models
import NN
import Tensor

/// The first-stage training loop: an autoencoder (KL or VQ) against L1 + LPIPS + PatchGAN,
/// with two Adam optimisers (betas 0.5, 0.9), data-parallel over the communicator's ranks.
///
/// Per step and micro-batch: the autoencoder's loss is differentiated (the discriminator
/// frozen), then the discriminator's loss on the real batch and the detached reconstructions
/// (once disc_start is reached). Gradients of both are averaged across ranks bucket by bucket
/// and both optimisers step. The discriminator reuses the step's reconstructions rather than
/// re-running the autoencoder after its update, which saves a forward pass per step.
public final class AutoencoderTrainer: TrainingTask {
    public let config: AutoencoderTrainingConfig
    public let communicator: Communicator
    public let model: FirstStageModel
    public let loss: AutoencoderLoss
    let autoencoderOptimizer: Adam
    let discriminatorOptimizer: Adam
    let autoencoderSync: GradientSynchronizer
    let discriminatorSync: GradientSynchronizer
    let dataset: ImageDataset
    public internal(set) var sampler: DistributedSampler
    /// Draws the posterior samples z = μ + σ·ε. The same on every rank: each draws the noise
    /// of the global batch and keeps its slice, so a sample's noise does not depend on the
    /// number of ranks.
    var noiseGenerator: RandomGenerator
    public internal(set) var step = 0
    /// Metrics summed since the last progress line (saved in checkpoints).
    var metricWindow = MetricWindow()
    /// The config file's text, saved verbatim with every checkpoint when set.
    public var configSource: String?
    /// Set when training ended early on a stop request (a signal), after the checkpoint.
    public internal(set) var stoppedEarly = false
    public let learningRate: LearningRateScaling
    let runDirectory: URL
    let reporter: ProgressReporter
    /// Wall time of training steps, and of the collectives inside the losses (synchronised
    /// BatchNorm statistics, the adaptive weight's gradients); the gradient allreduce is timed
    /// by the synchronisers.
    public let stepTime = Stopwatch()
    public let updateTime = Stopwatch()
    public let lossCollectiveTime = Stopwatch()

    public init(config: AutoencoderTrainingConfig, communicator: Communicator,
                lpipsWeights: URL = URL(fileURLWithPath: LPIPS.defaultWeightsPath)) throws {
        let problems = config.validationErrors()
        guard problems.isEmpty else { throw ConfigError(file: "config", problems.joined(separator: "\n  ")) }
        self.config = config
        self.communicator = communicator

        // Every rank builds identical initial weights from the seed; rank 0's are broadcast
        // anyway, so a rank whose build differs cannot drift silently.
        var initGenerator = RandomGenerator(seed: config.trainer.seed)
        model = FirstStageModel(config.model.autoencoder, generator: &initGenerator)
        let perceptual = config.model.loss.perceptualWeight > 0 ? try LPIPS.pretrained(at: lpipsWeights) : nil
        loss = AutoencoderLoss(config: config.model.loss, perceptual: perceptual,
                               imageChannels: config.model.autoencoder.outChannels, generator: &initGenerator)
        noiseGenerator = RandomGenerator(seed: config.trainer.seed).derived(1, 0)
        if communicator.size > 1 {
            // What ranks would otherwise compute from their own slice is reduced, so N ranks
            // compute what one process on the global batch would (docs/DISTRIBUTED.md).
            let timer = lossCollectiveTime
            if config.trainer.syncBatchNorm {
                loss.discriminator.setBatchNormStatisticsReducer { [communicator] buffer in
                    RankFailure.guarding("batch norm statistics allreduce", communicator: communicator) {
                        try timer.time { try communicator.allreduce(buffer, op: .sum) }
                    }
                }
            }
            loss.lastLayerGradientAverager = { [communicator] buffer in
                RankFailure.guarding("adaptive weight gradient allreduce", communicator: communicator) {
                    try timer.time { try communicator.allreduceMean(buffer) }
                }
            }
        }

        dataset = try config.data.trainingSet()
        learningRate = try LearningRateScaling(baseLearningRate: Double(config.model.baseLearningRate),
                                               ranks: communicator.size, batchPerRank: config.data.batchSize,
                                               accumulateGradientBatches: config.trainer.accumulateGradBatches,
                                               scale: config.trainer.scaleLR)
        autoencoderOptimizer = Adam(parameters: model.module.namedParameters(), lr: learningRate.learningRate, betas: (0.5, 0.9))
        discriminatorOptimizer = Adam(parameters: loss.discriminator.namedParameters(), lr: learningRate.learningRate,
                                      betas: (0.5, 0.9))
        let bucketBytes = config.trainer.bucketMiB << 20
        autoencoderSync = GradientSynchronizer(parameters: model.module.parameters(), communicator: communicator,
                                               bucketCapacityBytes: bucketBytes)
        discriminatorSync = GradientSynchronizer(parameters: loss.discriminator.parameters(), communicator: communicator,
                                                 bucketCapacityBytes: bucketBytes)
        sampler = try DistributedSampler(datasetCount: dataset.count,
                                         globalBatchSize: config.data.batchSize * communicator.size,
                                         worldSize: communicator.size, rank: communicator.rank,
                                         seed: config.trainer.seed, shuffle: true)
        runDirectory = URL(fileURLWithPath: config.trainer.runDirectory)
        if communicator.isRoot {
            try FileManager.default.createDirectory(at: runDirectory.appendingPathComponent("images"),
                                                    withIntermediateDirectories: true)
        }
        try communicator.barrier()
        reporter = ProgressReporter(isRoot: communicator.isRoot, totalSteps: config.trainer.maxSteps, startStep: 0,
                                    metricsURL: runDirectory.appendingPathComponent("metrics.jsonl"))

        // Same parameters everywhere, then start from rank 0's values.
        try autoencoderSync.verifyShapesMatch(names: model.module.namedParameters().map(\.0))
        try discriminatorSync.verifyShapesMatch(names: loss.discriminator.namedParameters().map(\.0))
        if config.trainer.overlapAllreduce {
            try autoencoderSync.enableOverlap()
            try discriminatorSync.enableOverlap()
        }
        try communicator.broadcast(model.module.parameters() + model.module.namedBuffers().map(\.1), root: 0)
        try communicator.broadcast(loss.discriminator.parameters() + loss.discriminator.namedBuffers().map(\.1), root: 0)
    }

    /// Trains to `trainer.max_steps`, writing progress, image grids and the model.
    public func train() throws { try runTrainingLoop() }

    /// The share of this rank's step time spent in collectives, on rank 0 (with several ranks).
    public var communicationSummary: String {
        let steps = stepTime.seconds
        let percent = { (t: Double) in steps > 0 ? String(format: "%.2f %%", 100 * t / steps) : "-" }
        let allreduce = autoencoderSync.allreduceTime.seconds + discriminatorSync.allreduceTime.seconds
        let synchronize = autoencoderSync.synchronizeTime.seconds + discriminatorSync.synchronizeTime.seconds
        let inLoss = lossCollectiveTime.seconds
        return String(format: "communication: %d steps in %.3f s; gradient allreduce %.3f s (%@), with packing %.3f s (%@); "
            + "loss collectives (BatchNorm statistics, adaptive weight) %.3f s (%@)",
                      stepTime.calls, steps, allreduce, percent(allreduce), synchronize, percent(synchronize),
                      inLoss, percent(inLoss))
            + "; " + CommunicationSummary.allreduceMode([autoencoderSync, discriminatorSync], stepSeconds: steps)
    }

    /// One optimisation step over `accumulate_grad_batches` micro-batches. Returns this rank's
    /// metrics.
    func trainStep() throws -> [String: Float] {
        let accumulate = config.trainer.accumulateGradBatches
        let scale = 1 / Float(accumulate)
        let discriminatorActive = loss.discriminatorFactor(step: step) > 0
        var metrics: [String: Float] = [:]
        model.module.train()
        loss.discriminator.train()
        // BatchNorm running statistics are rank 0's, as DDP's broadcast_buffers (synchronised
        // BatchNorm keeps them equal on every rank anyway; per-rank statistics do not).
        try communicator.broadcast(loss.discriminator.namedBuffers().map(\.1), root: 0)
        // The discriminator's weights do not change until its optimiser steps: its passes on
        // the reconstructions and on the real images read them reordered once.
        let discriminatorLayouts = WeightLayoutCache()
        for micro in 0..<accumulate {
            // Only the last micro-batch's backward completes the gradients, so only it reduces.
            let last = micro == accumulate - 1
            let (x, _) = try dataset.batch(sampler.nextBatch())
            let forward = model.forward(x, generator: &noiseGenerator, noiseSlice: (communicator.rank, communicator.size))
            let g = discriminatorLayouts.during {
                loss.generatorLoss(inputs: x, reconstructions: forward.reconstruction,
                                   regularization: forward.regularization, lastLayer: model.lastLayerWeight, step: step)
            }
            RankFailure.requireFinite(g.log["total_loss"] ?? .nan, "autoencoder loss at step \(step)", communicator: communicator)
            autoencoderSync.backward(g.backwardTarget * scale, reduce: last)
            for (k, v) in g.log { metrics[k, default: 0] += v * scale }
            if let perplexity = forward.perplexity { metrics["perplexity", default: 0] += perplexity * scale }
            if discriminatorActive {
                let d = discriminatorLayouts.during {
                    loss.discriminatorLoss(inputs: x, reconstructions: forward.reconstruction, step: step)
                }
                RankFailure.requireFinite(d.log["disc_loss"] ?? .nan, "discriminator loss at step \(step)", communicator: communicator)
                discriminatorSync.backward(d.loss * scale, reduce: last)
                for (k, v) in d.log { metrics[k, default: 0] += v * scale }
            }
        }
        discriminatorLayouts.clear()
        let rate = learningRate.learningRate * config.trainer.learningRateFactor(step: step)
        autoencoderOptimizer.learningRate = rate
        discriminatorOptimizer.learningRate = rate
        if config.trainer.lrSchedule != nil { metrics["lr"] = Float(rate) }
        try autoencoderSync.synchronize()
        updateTime.time {
            if config.trainer.gradientClip > 0 { autoencoderOptimizer.clipAndStep(maxNorm: config.trainer.gradientClip) } else { autoencoderOptimizer.step() }
            autoencoderOptimizer.zeroGrad()
        }
        if discriminatorActive { try discriminatorSync.synchronize() }
        updateTime.time {
            if discriminatorActive { discriminatorOptimizer.step() }
            discriminatorOptimizer.zeroGrad()
        }
        return metrics
    }

    /// Inputs (top rows) and their reconstructions (bottom rows), from rank 0's first images.
    func writeReconstructionGrid() throws {
        guard communicator.isRoot else { return }
        let (grid, columns) = try AutoencoderEvaluator.reconstructionGrid(model, dataset)
        let url = runDirectory.appendingPathComponent("images/reconstruction_step\(String(format: "%06d", step)).png")
        try ImageGrid.write(grid, to: url, columns: columns)
        reporter.image("reconstructions (inputs above, reconstructions below)", file: url, step: step)
    }

    /// The autoencoder's weights as safetensors (config and step in the metadata), atomically.
    public func saveModel() throws {
        guard communicator.isRoot else { return }
        let url = runDirectory.appendingPathComponent("autoencoder.safetensors")
        try FirstStageModel.save(model, config: config.model.autoencoder, step: step, to: url)
    }
}

// The shared loop's hooks.
extension AutoencoderTrainer {
    var trainerConfig: TrainerConfig { config.trainer }
    var metricOrder: [String] { ["rec_loss", "p_loss", "kl_loss", "quant_loss", "perplexity", "g_loss", "d_weight", "disc_loss"] }
    var datasetIdentity: String { dataset.identity }
    func dataContentDigest() throws -> String { dataset.contentDigest() }

    func runHeader() -> [String] {
        let ae = config.model.autoencoder
        var lines = ["autoencoder: \(ae.regularizer == .kl ? "KL" : "VQ") f=\(ae.downsamplingFactor), latent "
            + "\(ae.embedDim)x\(ae.latentResolution)x\(ae.latentResolution), \(model.module.parameterCount) parameters; "
            + "discriminator \(loss.discriminator.parameterCount) parameters",
            "data: \(dataset.identity), \(dataset.count) images, batch \(config.data.batchSize) per rank x "
            + "\(communicator.size) rank(s) x \(config.trainer.accumulateGradBatches) accumulation",
            learningRate.description]
        if let schedule = config.trainer.lrSchedule { lines.append(schedule.description) }
        return lines
    }

    func afterStep() throws {
        if step % config.trainer.imageEvery == 0 || step == config.trainer.maxSteps { try writeReconstructionGrid() }
    }

    func finish() throws { try saveModel() }
}
