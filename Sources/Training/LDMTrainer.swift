import Checkpoint
import Data
import Diffusion
import Distributed
import Foundation
import LatentCache
import Models
import NN
import Tensor

/// The second stage: a conditional UNet trained with the LDM objective on latents from the
/// cache, data-parallel over the communicator's ranks, on the shared training loop.
///
/// Per micro-batch: this rank's slice of a global batch of cached posteriors, a fresh
/// z = μ + σ·ε (noise drawn for the global batch and sliced), z·scale_factor, timesteps, ε
/// and condition dropout drawn for the global batch and sliced (`TrainingDraws`), the loss
/// MSE(f_θ(z_t, t, τ(y)), ε) backward; then the gradient allreduce, clipping, AdamW and the
/// EMA update. N ranks therefore compute what one process on the global batch would.
public final class LDMTrainer: TrainingTask {
    static let trainerKind = "ldm"
    public let config: LDMTrainingConfig
    public let communicator: Communicator
    public let model: LatentDiffusion
    public let ema: ExponentialMovingAverage?
    let optimizer: AdamW
    let synchronizer: GradientSynchronizer
    /// Each rank's share of the weight update, with several ranks on one machine (nil: every
    /// rank updates every parameter).
    let shardedUpdate: ShardedWeightUpdate?
    public internal(set) var reader: LatentCacheReader
    let cacheDirectory: URL
    /// Posterior noise of the cached latents (same on every rank: global batch, sliced).
    var posteriorGenerator: RandomGenerator
    /// Timesteps, ε and condition dropout (same on every rank: global batch, sliced).
    var diffusionGenerator: RandomGenerator
    /// Whether scale_factor is still to be computed from the first global batch.
    var scaleFactorPending: Bool
    public internal(set) var step = 0
    var metricWindow = MetricWindow()
    public var configSource: String?
    public internal(set) var stoppedEarly = false
    public let learningRate: LearningRateScaling
    let runDirectory: URL
    let reporter: ProgressReporter
    public let stepTime = Stopwatch()
    public let updateTime = Stopwatch()
    /// The first stage that decodes grids (loaded lazily on rank 0).
    var firstStage: FirstStageModel?
    let heldOut: HeldOutDiffusionLoss?
    /// The light generation check's classifier and reference features (loaded at first use).
    var sampleQuality: SampleQualityState?
    /// Captions of a text-conditional model (nil otherwise).
    let captionSource: CaptionSource?
    /// The concatenated input of a super-resolution or inpainting model (nil otherwise).
    let spatialSource: SpatialConditionSource?
    var warnedTruncation = false

    public init(config: LDMTrainingConfig, communicator: Communicator) throws {
        let problems = config.validationErrors()
        guard problems.isEmpty else { throw ConfigError(file: "config", problems.joined(separator: "\n  ")) }
        self.config = config
        self.communicator = communicator
        cacheDirectory = URL(fileURLWithPath: config.data.cache)
        let globalBatch = config.data.batchSize * communicator.size
        reader = try LatentCacheReader(directory: cacheDirectory, split: config.data.trainSplit, globalBatchSize: globalBatch,
                                       worldSize: communicator.size, rank: communicator.rank, seed: config.trainer.seed,
                                       window: config.data.shuffleWindow)
        let manifest = reader.manifest
        if let spatial = config.model.conditioning.spatial, config.model.conditioning.usesConcat, let images = config.data.images {
            let firstStage = spatial.task == .inpainting
                ? try Self.loadFirstStage(manifest: manifest, path: config.data.autoencoder, cache: cacheDirectory.path) : nil
            spatialSource = try SpatialConditionSource(config: spatial, images: images, manifest: manifest,
                                                       splits: [config.data.trainSplit] + (config.data.testSplit.isEmpty ? [] : [config.data.testSplit]),
                                                       cache: cacheDirectory.path, seed: config.trainer.seed, firstStage: firstStage)
            self.firstStage = firstStage
        } else {
            spatialSource = nil
        }
        try Self.checkCache(manifest, config: config, cache: cacheDirectory.path, conditionChannels: spatialSource?.conditionChannels ?? 0)

        var initGenerator = RandomGenerator(seed: config.trainer.seed)
        model = LatentDiffusion(config.model.diffusion, generator: &initGenerator,
                                vocabulary: try LatentDiffusion.vocabulary(for: config.model.diffusion))
        captionSource = config.model.conditioning.isTextConditional
            ? CaptionSource(config: config.data.captions, seed: config.trainer.seed, cache: cacheDirectory.path) : nil
        scaleFactorPending = config.model.scaleByStd
        posteriorGenerator = RandomGenerator(seed: config.trainer.seed).derived(2, 0)
        diffusionGenerator = RandomGenerator(seed: config.trainer.seed).derived(2, 1)
        learningRate = try LearningRateScaling(baseLearningRate: Double(config.model.baseLearningRate),
                                               ranks: communicator.size, batchPerRank: config.data.batchSize,
                                               accumulateGradientBatches: config.trainer.accumulateGradBatches,
                                               scale: config.trainer.scaleLR)
        optimizer = AdamW(parameters: model.namedParameters(), lr: learningRate.learningRate,
                          weightDecay: Double(config.model.weightDecay))
        synchronizer = GradientSynchronizer(parameters: model.parameters(), communicator: communicator,
                                            bucketCapacityBytes: config.trainer.bucketMiB << 20)
        runDirectory = URL(fileURLWithPath: config.trainer.runDirectory)
        if communicator.isRoot {
            try FileManager.default.createDirectory(at: runDirectory.appendingPathComponent("images"), withIntermediateDirectories: true)
        }
        try communicator.barrier()
        reporter = ProgressReporter(isRoot: communicator.isRoot, totalSteps: config.trainer.maxSteps, startStep: 0,
                                    metricsURL: runDirectory.appendingPathComponent("metrics.jsonl"))
        try synchronizer.verifyShapesMatch(names: model.namedParameters().map(\.0))
        if config.trainer.overlapAllreduce { try synchronizer.enableOverlap() }
        try communicator.broadcast(model.parameters() + model.namedBuffers().map(\.1), root: 0)
        shardedUpdate = try ShardedWeightUpdate.make(enabled: config.trainer.shardWeightUpdate, optimizer: optimizer,
                                                     synchronizer: synchronizer)
        // The EMA starts from the broadcast weights, so it is the same on every rank.
        ema = config.model.ema.enabled
            ? ExponentialMovingAverage(model: model, decay: config.model.ema.decay, usesUpdateCount: config.model.ema.useNumUpdates)
            : nil
        heldOut = config.data.testSplit.isEmpty ? nil
            : try HeldOutDiffusionLoss(cache: cacheDirectory, split: config.data.testSplit, samples: config.evaluation.samples,
                                       seed: config.evaluation.seed, batchSize: config.data.batchSize)
    }

    /// The cache must hold what the model needs: a latent shape the UNet takes (with the
    /// concatenated condition's channels), labels for a class-conditional model.
    static func checkCache(_ manifest: LatentCacheManifest, config: LDMTrainingConfig, cache: String, conditionChannels: Int) throws {
        let shape = manifest.latentShape
        let unet = config.model.diffusion.effectiveUNet
        guard shape.count == 3 else {
            throw ConfigError.cache(cache, "latent shape \(shape) is not [C, h, w]")
        }
        if shape[0] + conditionChannels != unet.inChannels {
            let condition = conditionChannels > 0 ? " + \(conditionChannels) condition channels (\(config.model.conditioning.spatial!.task.rawValue))" : ""
            throw ConfigError.cache(cache, "the cache's latents have \(shape[0]) channels\(condition); model.unet.in_channels is "
                + "\(unet.inChannels), it must be \(shape[0] + conditionChannels)")
        }
        if unet.outChannels != shape[0] {
            throw ConfigError.cache(cache, "model.unet.out_channels \(unet.outChannels) must equal the latents' \(shape[0]) channels to predict ε")
        }
        let f = unet.downsamplingFactor
        if shape[1] % f != 0 || shape[2] % f != 0 {
            throw ConfigError.cache(cache, "latents \(shape[1])×\(shape[2]) do not fit the UNet's \(unet.channelMult.count) levels "
                + "(each side must be divisible by \(f)): use fewer model.unet.channel_mult entries")
        }
    }

    // MARK: - Shared loop hooks

    var trainerConfig: TrainerConfig { config.trainer }
    var metricOrder: [String] { ["loss", "grad_norm", "lr", "scale_factor"] }
    /// The manifest lists every shard with its XXH64, so its bytes identify the cache's content.
    func dataContentDigest() throws -> String { XXH64.hexString(XXH64.hash(try reader.manifest.encoded())) }
    var datasetIdentity: String { "latent-cache:\(reader.manifest.autoencoder.fingerprint):\(config.data.trainSplit)/\(reader.sampleCount)" }

    func runHeader() -> [String] {
        let m = config.model, u = model.unet.config
        var lines = [
            "latent diffusion: UNet \(model.unet.parameterCount) parameters (model_channels \(u.modelChannels), channel_mult "
                + "\(u.channelMult), \(u.numResBlocks) res blocks, attention at \(u.attentionResolutions)); conditioning "
                + "\(m.conditioning.key.rawValue)\(m.conditioning.numClasses.map { ", \($0) classes, ucg_rate \(m.conditioning.ucgRate)" } ?? "")"
                + (model.textConditioner.map { t in
                    let c = m.conditioning.textEncoder
                    return ", text encoder \(t.parameterCount) parameters (\(c.nLayer) layers, width \(t.transformer.dim), \(c.heads) heads × "
                        + "\(c.dimHead), context \(c.maxSeqLen), vocabulary \(c.vocabSize)), captions \(config.data.captions.source.rawValue), "
                        + "ucg_rate \(m.conditioning.ucgRate)"
                } ?? ""),
            "schedule: \(m.schedule.betaSchedule.rawValue), T = \(m.schedule.timesteps), β \(m.schedule.linearStart) → "
                + "\(m.schedule.linearEnd); predicts \(m.parameterization.rawValue); EMA \(ema.map { "decay \($0.decay)" } ?? "off")",
            "data: \(cacheDirectory.path) [\(config.data.trainSplit)], \(reader.sampleCount) latents \(reader.latentShape), batch "
                + "\(config.data.batchSize) per rank x \(communicator.size) rank(s) x \(config.trainer.accumulateGradBatches) accumulation",
            learningRate.description,
        ]
        if let schedule = config.trainer.lrSchedule { lines.append(schedule.description) }
        if let shardedUpdate { lines.append(shardedUpdate.description) }
        if !config.model.scaleByStd || !scaleFactorPending { lines.append("scale_factor: \(model.scaleFactor)") }
        return lines
    }

    func trainStep() throws -> [String: Float] {
        let accumulate = config.trainer.accumulateGradBatches
        let scale = 1 / Float(accumulate)
        var metrics: [String: Float] = [:]
        model.train()
        let slice = (communicator.rank, communicator.size)
        for micro in 0..<accumulate {
            let batch = try reader.nextBatch()
            let z = batch.sample(globalBatchNoise: &posteriorGenerator, slice: slice)
            if scaleFactorPending { try computeScaleFactor(z) }
            let start = z * model.scaleFactor
            let draws = TrainingDraws.draw(globalBatch: z.shape[0] * communicator.size, sampleShape: Array(z.shape.dropFirst()),
                                           slice: slice, timesteps: model.schedule.timesteps,
                                           dropProbability: config.model.conditioning.isGuidable ? config.model.conditioning.ucgRate : 0,
                                           generator: &diffusionGenerator)
            let conditions = ConditionBatch(count: z.shape[0], labels: batch.labels,
                                            captions: try captionSource?.captions(for: batch, step: step),
                                            spatial: try spatialSource?.training(batch, step: step, scaleFactor: model.scaleFactor))
            let loss = try model.loss(start: start, conditions: conditions, draws: draws)
            RankFailure.requireFinite(loss.item, "diffusion loss at step \(step + 1)", communicator: communicator)
            // Only the last micro-batch completes the gradients, so only it reduces.
            synchronizer.backward(loss * scale, reduce: micro == accumulate - 1)
            metrics["loss", default: 0] += loss.item * scale
        }
        let rate = learningRate.learningRate * config.trainer.learningRateFactor(step: step)
        optimizer.learningRate = rate
        metrics["lr"] = Float(rate)
        try synchronizer.synchronize(keeping: shardedUpdate?.owned)
        let maxNorm = config.trainer.gradientClip > 0 ? config.trainer.gradientClip : .infinity
        try updateTime.time {
            // The norm before clipping, every step (a spike here is the first sign of trouble).
            if let shardedUpdate {
                metrics["grad_norm"] = try shardedUpdate.step(maxNorm: maxNorm, averaging: ema, of: model)
            } else {
                metrics["grad_norm"] = optimizer.clipAndStep(maxNorm: maxNorm, averaging: ema, of: ema == nil ? nil : model)
            }
            optimizer.zeroGrad()
        }
        warnTruncationOnce()
        metrics["scale_factor"] = model.scaleFactor
        return metrics
    }

    /// One warning per run (per rank that sees one) when captions are cut to the context.
    func warnTruncationOnce() {
        guard !warnedTruncation, let text = model.textConditioner, let caption = text.firstTruncatedCaption else { return }
        warnedTruncation = true
        FileHandle.standardError.write(Data(("rank \(communicator.rank): warning: captions longer than the text context "
            + "(\(text.contextLength) tokens with [CLS] and [SEP]) are truncated, e.g. \"\(caption.prefix(120))\"; this is said once "
            + "per run\n").utf8))
    }

    /// scale_factor = 1/std(z) over the first global batch (the reference's scale_by_std):
    /// exact sums over ranks, then rank 0's value broadcast so every rank holds the same bits.
    func computeScaleFactor(_ z: Tensor) throws {
        var sums = [0.0, 0.0, 0.0]
        for v in z.buffer { sums[0] += Double(v); sums[1] += Double(v) * Double(v) }
        sums[2] = Double(z.count)
        try sums.withUnsafeMutableBufferPointer { try communicator.allreduce($0, op: .sum) }
        let n = sums[2], mean = sums[0] / n
        let variance = (sums[1] - n * mean * mean) / max(n - 1, 1)   // unbiased, as torch.std
        guard variance > 0 && variance.isFinite else {
            throw ConfigError.cache(cacheDirectory.path, "the first batch of latents has variance \(variance): cannot set scale_factor by std")
        }
        let value = try communicator.broadcast(Float(1 / variance.squareRoot()), root: 0)
        model.setScaleFactor(value)
        scaleFactorPending = false
        reporter.say(String(format: "scale_factor: 1/std(z) = %.6f from the first global batch (%d latents)", value, Int(n) / max(1, z.count / z.shape[0])))
        if communicator.isRoot { recordScaleFactorInCache(value) }
    }

    /// Fills the cache manifest's scale_factor slot once (a best-effort note for other runs;
    /// the model file always carries its own value).
    func recordScaleFactorInCache(_ value: Float) {
        guard reader.manifest.scaleFactor == nil else { return }
        do {
            let current = try LatentCacheManifest.read(from: cacheDirectory)
            guard current.scaleFactor == nil else { return }
            try current.settingScaleFactor(value).write(to: cacheDirectory)
        } catch {
            reporter.say("note: could not record scale_factor in \(cacheDirectory.path)/manifest.json: \(error)")
        }
    }

    func afterStep() throws {
        let atEnd = step == config.trainer.maxSteps
        let evaluating = config.evaluation.every > 0 && step % config.evaluation.every == 0 || atEnd
        let sampling = config.sampling.every > 0 && step % config.sampling.every == 0 || atEnd
        if evaluating || sampling { try gatherShadows() }
        if evaluating { try evaluateHeldOut() }
        if sampling { try writeSampleGrid() }
    }

    /// Every EMA shadow up to date on every rank (a sharded update moves each rank's share
    /// only). A collective; called before anything reads the shadows.
    func gatherShadows() throws {
        if let shardedUpdate, let ema { try shardedUpdate.gatherShadows(of: ema) }
    }

    func prepareCheckpoint() throws { try gatherShadows() }

    /// Runs `body` with the EMA weights in the model (the trained ones otherwise).
    func withEvaluationWeights<T>(_ body: () throws -> T) rethrows -> T {
        guard let ema else { return try body() }
        precondition(shardedUpdate?.shadowsBehind != true, "EMA weights read before the sharded update's shadows were gathered")
        return try ema.withAveragedWeights(in: model, body)
    }

    /// The held-out ε-MSE (EMA weights), logged and appended to heldout.jsonl. Collective.
    func evaluateHeldOut() throws {
        try evaluateSampleQuality()
        guard let heldOut else { return }
        let split = config.data.testSplit
        let conditions = { [captionSource, spatialSource, model] (batch: LatentBatch, positions: [Int]) throws -> ConditionBatch in
            ConditionBatch(count: positions.count, labels: batch.labels, captions: try captionSource?.captions(for: batch, step: 0),
                           spatial: try spatialSource?.heldOut(batch, split: split, positions: positions, scaleFactor: model.scaleFactor))
        }
        let result = try withEvaluationWeights { try heldOut.evaluate(model, communicator: communicator, conditions: conditions) }
        reporter.say(String(format: "held-out (%@, %d latents, EMA %@): eps_mse %.5f", config.data.testSplit, result.count,
                            ema == nil ? "off" : "on", result.mse)
            + " | by t: " + result.bucketMSE.map { String(format: "%.3f", $0) }.joined(separator: " "))
        guard communicator.isRoot else { return }
        var scalars: [String: Float] = ["heldout/eps_mse": Float(result.mse)]
        for (k, v) in result.bucketMSE.enumerated() where v.isFinite { scalars["heldout/eps_mse_t\(k * model.schedule.timesteps / HeldOutDiffusionLoss.bucketCount)"] = Float(v) }
        reporter.scalars(scalars, step: step)
        try HeldOutDiffusionLoss.append(result, step: step, to: runDirectory.appendingPathComponent("heldout.jsonl"))
    }

    /// Rows of samples (one per class) from the EMA weights, on rank 0.
    func writeSampleGrid() throws {
        guard communicator.isRoot else { return }
        if let spatialSource { return try writeSpatialSampleGrid(spatialSource) }
        let firstStage = try loadFirstStage()
        let s = config.sampling
        let sampling = gridSampling
        let classes = config.model.conditioning.isClassConditional ? config.model.conditioning.numClasses : nil
        let columns = s.perClass
        let labels: [Int]? = classes.map { n in (0..<n).flatMap { Array(repeating: $0, count: columns) } }
        let captions = gridPrompts?.flatMap { Array(repeating: $0, count: columns) }
        let count = labels?.count ?? captions?.count ?? 8 * columns
        let started = ProgressReporter.now()
        let latents = try withEvaluationWeights {
            try sampling.sampleLatents(model, latentShape: reader.latentShape, indices: Array(0..<count), labels: labels,
                                       captions: captions)
        }
        let images = LatentDiffusionSampling.decode(latents, scaleFactor: model.scaleFactor, firstStage: firstStage)
        let url = runDirectory.appendingPathComponent("images/samples_step\(String(format: "%06d", step)).png")
        try ImageGrid.write(ImageGrid.enlarged(images, minimumWidth: 600, columns: columns), to: url, columns: columns)
        reporter.image(classes != nil ? "samples (a row per class)" : captions != nil ? "samples (a row per prompt)" : "samples",
                       file: url, step: step)
        reporter.say(String(format: "samples: %@ (%d, %@ %d steps, guidance %.1f, %.1f s)", url.path, count, s.sampler, s.steps,
                            s.guidance, ProgressReporter.now() - started))
    }

    /// The sampler settings of the grids (config.sampling).
    var gridSampling: LatentDiffusionSampling {
        let s = config.sampling
        var sampling = LatentDiffusionSampling()
        sampling.kind = LatentDiffusionSampling.Kind(rawValue: s.sampler) ?? .ddim
        sampling.steps = s.steps
        sampling.eta = s.eta
        sampling.guidance = s.guidance
        sampling.seed = s.seed
        return sampling
    }

    /// A text model's grid rows: sampling.prompts, or every class in a held-out phrasing.
    var gridPrompts: [String]? {
        guard let captionSource else { return nil }
        if let prompts = config.sampling.prompts, !prompts.isEmpty { return prompts }
        return captionSource.config.names.map { CaptionSource.caption(template: CaptionSource.heldOutTemplates[0], className: $0) }
    }

    func loadFirstStage() throws -> FirstStageModel {
        if let firstStage { return firstStage }
        let loaded = try Self.loadFirstStage(manifest: reader.manifest, path: config.data.autoencoder, cache: cacheDirectory.path)
        firstStage = loaded
        return loaded
    }

    /// The cache's first stage (or `path`), refused unless it is the one that encoded the cache.
    static func loadFirstStage(manifest: LatentCacheManifest, path: String?, cache: String) throws -> FirstStageModel {
        let (loaded, fingerprint) = try AutoencoderFingerprint.loadModel(at: URL(fileURLWithPath: path ?? manifest.autoencoder.path))
        guard fingerprint == manifest.autoencoder.fingerprint else {
            throw LatentCacheError.autoencoderMismatch(cache: cache, cached: manifest.autoencoder.fingerprint, current: fingerprint)
        }
        return loaded
    }

    /// The trained model: `ldm.safetensors` (EMA weights when the EMA is on, what sampling
    /// uses) and `ldm_nonema.safetensors` (the optimised weights).
    public func saveModel() throws {
        guard communicator.isRoot else { return }
        let meta = modelMetadata
        try model.save(to: runDirectory.appendingPathComponent("ldm_nonema.safetensors"), metadata: meta.merging(["ldm.weights": "trained"]) { $1 })
        try withEvaluationWeights {
            try model.save(to: runDirectory.appendingPathComponent("ldm.safetensors"),
                           metadata: meta.merging(["ldm.weights": ema == nil ? "trained" : "ema"]) { $1 })
        }
        reporter.say("model: \(runDirectory.appendingPathComponent("ldm.safetensors").path)")
    }

    var modelMetadata: [String: String] {
        ["ldm.step": String(step), "ldm.autoencoder_fingerprint": reader.manifest.autoencoder.fingerprint,
         "ldm.autoencoder_path": config.data.autoencoder ?? reader.manifest.autoencoder.path,
         "ldm.latent_shape": reader.latentShape.map(String.init).joined(separator: ","),
         "ldm.cache": cacheDirectory.path]
    }

    func finish() throws { try saveModel() }

    var communicationSummary: String {
        let steps = stepTime.seconds
        let allreduce = synchronizer.allreduceTime.seconds
        let gather = synchronizer.gatherTime.seconds
        return String(format: "communication: %d steps in %.3f s; gradient allreduce %.3f s (%.2f %%); ", stepTime.calls, steps,
                      allreduce, steps > 0 ? 100 * allreduce / steps : 0)
            + CommunicationSummary.allreduceMode([synchronizer], stepSeconds: steps)
            + (shardedUpdate == nil ? "" : "; sharded update's weight gather \(String(format: "%.3f s (%@)", gather, CommunicationSummary.percent(gather, of: steps)))")
    }

    /// Trains to `trainer.max_steps`, writing progress, grids, held-out losses and the model.
    public func train() throws {
        // A light-check setup that cannot work fails before the first step, not at the first evaluation.
        _ = try sampleQualityState()
        try runTrainingLoop()
    }
}
