import Checkpoint
import Data
import Distributed
import Evaluation
import Foundation
import Models
import NN
import Tensor

/// Trains the evaluation classifier (cross-entropy, AdamW) on the labelled training split,
/// data-parallel on the shared training loop: flips are drawn for the global batch and sliced,
/// so N ranks compute what one process on the global batch would. At the end: accuracy on
/// the held-out split, written into the model file and `evaluation.json`.
public final class ClassifierTrainer: TrainingTask {
    static let trainerKind = "classifier"
    static let weightsFile = "classifier.safetensors"
    static let flipKey = "augmentation"
    public let config: ClassifierTrainingConfig
    public let communicator: Communicator
    public let model: EvaluationClassifier
    let dataset: ImageDataset
    let classNames: [String]
    var sampler: DistributedSampler
    let optimizer: AdamW
    let synchronizer: GradientSynchronizer
    /// Which images are flipped (same on every rank: drawn for the global batch).
    var flipGenerator: RandomGenerator
    public internal(set) var step = 0
    var metricWindow = MetricWindow()
    public var configSource: String?
    public internal(set) var stoppedEarly = false
    public let learningRate: LearningRateScaling
    let runDirectory: URL
    let reporter: ProgressReporter
    public let stepTime = Stopwatch()
    public let updateTime = Stopwatch()
    /// Held-out accuracy of the finished model.
    public internal(set) var heldOutAccuracy: Double?

    public init(config: ClassifierTrainingConfig, communicator: Communicator) throws {
        let problems = config.validationErrors()
        guard problems.isEmpty else { throw ConfigError(file: "config", problems.joined(separator: "\n  ")) }
        self.config = config
        self.communicator = communicator
        dataset = try config.data.trainingSet()
        guard let names = dataset.classNames else {
            throw ConfigError(file: dataset.identity, "the images have no labels: an image folder needs one sub-folder per class")
        }
        guard names.count == config.model.classifier.numClasses else {
            throw ConfigError(file: dataset.identity, "the data has \(names.count) classes, model.classifier.num_classes is "
                + "\(config.model.classifier.numClasses)")
        }
        classNames = names
        var initGenerator = RandomGenerator(seed: config.trainer.seed)
        model = EvaluationClassifier(config.model.classifier, generator: &initGenerator)
        flipGenerator = RandomGenerator(seed: config.trainer.seed).derived(3, 0)
        learningRate = try LearningRateScaling(baseLearningRate: Double(config.model.baseLearningRate),
                                               ranks: communicator.size, batchPerRank: config.data.batchSize,
                                               accumulateGradientBatches: config.trainer.accumulateGradBatches,
                                               scale: config.trainer.scaleLR)
        optimizer = AdamW(parameters: model.namedParameters(), lr: learningRate.learningRate,
                          weightDecay: Double(config.model.weightDecay))
        synchronizer = GradientSynchronizer(parameters: model.parameters(), communicator: communicator,
                                            bucketCapacityBytes: config.trainer.bucketMiB << 20)
        sampler = try DistributedSampler(datasetCount: dataset.count, globalBatchSize: config.data.batchSize * communicator.size,
                                         worldSize: communicator.size, rank: communicator.rank, seed: config.trainer.seed,
                                         shuffle: true)
        runDirectory = URL(fileURLWithPath: config.trainer.runDirectory)
        if communicator.isRoot { try FileManager.default.createDirectory(at: runDirectory, withIntermediateDirectories: true) }
        try communicator.barrier()
        reporter = ProgressReporter(isRoot: communicator.isRoot, totalSteps: config.trainer.maxSteps, startStep: 0,
                                    metricsURL: runDirectory.appendingPathComponent("metrics.jsonl"))
        try synchronizer.verifyShapesMatch(names: model.namedParameters().map(\.0))
        if config.trainer.overlapAllreduce { try synchronizer.enableOverlap() }
        try communicator.broadcast(model.parameters(), root: 0)
    }

    /// Builds a trainer, from `--resume` (`latest` or a checkpoint directory) when given.
    public static func start(config: ClassifierTrainingConfig, communicator: Communicator, resume: String? = nil,
                             configSource: String? = nil) throws -> ClassifierTrainer {
        var config = config
        var batch = config.data.batchSize
        let fresh = config
        let found = try TrainingStart.locate(kind: trainerKind, resume: resume, runDirectory: config.trainer.runDirectory,
                                             communicator: communicator, batchPerRank: &batch,
                                             currentConfigJSON: { try TrainingResume.canonicalJSON(fresh) })
        config.data.batchSize = batch
        let trainer = try ClassifierTrainer(config: config, communicator: communicator)
        trainer.configSource = configSource
        if let found { try trainer.restore(from: found.checkpoint, state: found.state) }
        return trainer
    }

    public func train() throws { try runTrainingLoop() }

    // MARK: - The step

    var trainerConfig: TrainerConfig { config.trainer }
    var metricOrder: [String] { ["loss", "accuracy", "lr"] }
    var datasetIdentity: String { dataset.identity }
    func dataContentDigest() throws -> String { dataset.contentDigest() }

    func runHeader() -> [String] {
        let c = config.model.classifier
        var lines = ["classifier: \(model.parameterCount) parameters (channels \(c.channels), \(c.convsPerLevel) convs per level, "
                + "\(c.featureDimension)-d features, \(c.numClasses) classes)\(config.model.horizontalFlip ? "; random horizontal flips" : "")",
            "data: \(dataset.identity), \(dataset.count) images, batch \(config.data.batchSize) per rank x \(communicator.size) rank(s) "
                + "x \(config.trainer.accumulateGradBatches) accumulation (\(String(format: "%.1f", Double(config.trainer.maxSteps) * Double(sampler.globalBatchSize * config.trainer.accumulateGradBatches) / Double(dataset.count))) epochs)",
            learningRate.description]
        if let schedule = config.trainer.lrSchedule { lines.append(schedule.description) }
        return lines
    }

    func trainStep() throws -> [String: Float] {
        let accumulate = config.trainer.accumulateGradBatches
        let scale = 1 / Float(accumulate)
        var metrics: [String: Float] = [:]
        model.train()
        for micro in 0..<accumulate {
            let (x, labels) = try dataset.batch(sampler.nextBatch())
            // One draw per image of the global batch, this rank's slice applied.
            let flips = (0..<sampler.globalBatchSize).map { _ in flipGenerator.nextUniform() < 0.5 }
            let mine = Array(flips[(communicator.rank * x.shape[0])..<((communicator.rank + 1) * x.shape[0])])
            let input = config.model.horizontalFlip ? Self.flippingHorizontally(x, where: mine) : x
            let logits = model(input).logits
            let loss = EvaluationClassifier.crossEntropy(logits, labels: labels)
            RankFailure.requireFinite(loss.item, "classifier loss at step \(step + 1)", communicator: communicator)
            // Only the last micro-batch completes the gradients, so only it reduces.
            synchronizer.backward(loss * scale, reduce: micro == accumulate - 1)
            metrics["loss", default: 0] += loss.item * scale
            metrics["accuracy", default: 0] += Float(Self.correct(logits, labels)) / Float(labels.count) * scale
        }
        let rate = learningRate.learningRate * config.trainer.learningRateFactor(step: step)
        optimizer.learningRate = rate
        metrics["lr"] = Float(rate)
        try synchronizer.synchronize()
        updateTime.time {
            if config.trainer.gradientClip > 0 { optimizer.clipAndStep(maxNorm: config.trainer.gradientClip) } else { optimizer.step() }
            optimizer.zeroGrad()
        }
        return metrics
    }

    /// Images [N, C, H, W] with those marked mirrored left–right.
    static func flippingHorizontally(_ x: Tensor, where flip: [Bool]) -> Tensor {
        let out = Tensor(shape: x.shape, scalars: x.scalars)
        let n = x.shape[0], plane = x.shape[2] * x.shape[3], w = x.shape[3], perImage = x.count / max(n, 1)
        for i in 0..<n where flip[i] {
            for p in stride(from: i * perImage, to: (i + 1) * perImage, by: plane) {
                for row in stride(from: p, to: p + plane, by: w) {
                    for j in 0..<w / 2 { swap(&out.pointer[row + j], &out.pointer[row + w - 1 - j]) }
                }
            }
        }
        return out
    }

    static func correct(_ logits: Tensor, _ labels: [Int]) -> Int {
        let c = logits.shape[1], v = logits.scalars
        return labels.enumerated().filter { i, y in
            let row = v[(i * c)..<((i + 1) * c)]
            return row.firstIndex(of: row.max()!)! - i * c == y
        }.count
    }

    func afterStep() throws {}

    // MARK: - Outputs

    /// Held-out accuracy (the whole split, ranks splitting it), then the model file.
    func finish() throws {
        if let heldOut = try config.data.validationSet() {
            let result = try ClassifierEvaluation.evaluate(model, on: heldOut, batchSize: config.data.batchSize * 2,
                                                           communicator: communicator)
            heldOutAccuracy = result.accuracy
            reporter.say(String(format: "held-out accuracy on %@: %.2f %% (%d images, %.1f s)", heldOut.identity,
                                100 * result.accuracy, result.count, result.seconds))
            reporter.scalars(["heldout/accuracy": Float(result.accuracy)], step: step)
            if communicator.isRoot {
                try EvaluationReport(split: heldOut.identity, step: step, imageCount: result.count,
                                     metrics: ["accuracy": MetricSummary(count: result.count, mean: result.accuracy, std: nil, min: nil, max: nil)],
                                     metadata: ["classes": .string(classNames.joined(separator: ",")), "ranks": .number(Double(communicator.size))])
                    .write(to: runDirectory.appendingPathComponent("evaluation.json"))
            }
        }
        try saveModel()
    }

    /// `classifier.safetensors` with the classes, data and held-out accuracy in the metadata.
    public func saveModel() throws {
        guard communicator.isRoot else { return }
        let url = runDirectory.appendingPathComponent(Self.weightsFile)
        try model.save(to: url, metadata: modelMetadata)
        reporter.say("model: \(url.path)")
    }

    var modelMetadata: [String: String] {
        var meta = ["ldm.step": String(step), "ldm.classes": classNames.joined(separator: ","), "ldm.dataset": dataset.identity]
        if let heldOutAccuracy { meta["ldm.heldout_accuracy"] = String(heldOutAccuracy) }
        return meta
    }

    var communicationSummary: String {
        let steps = stepTime.seconds, allreduce = synchronizer.allreduceTime.seconds
        return String(format: "communication: %d steps in %.3f s; gradient allreduce %.3f s (%.2f %%); ", stepTime.calls, steps,
                      allreduce, steps > 0 ? 100 * allreduce / steps : 0)
            + CommunicationSummary.allreduceMode([synchronizer], stepSeconds: steps)
    }

    // MARK: - Checkpoints

    var replicatedTensors: [Tensor] { model.orderedStateDict().map(\.1) }
    var namedOptimizers: [(String, Adam)] { [("classifier", optimizer)] }

    func writeSharedCheckpointFiles(_ writer: TrainingCheckpointWriter, state: TrainingStateRecord) throws {
        try writer.writeFile(Self.weightsFile) { try model.save(to: $0, metadata: modelMetadata) }
    }

    func rankState(parameterDigest: UInt64) -> RankTrainingState {
        RankTrainingState(rank: communicator.rank, worldSize: communicator.size, cursor: sampler.cursor,
                          generators: [Self.flipKey: flipGenerator], metricWindow: metricWindow, parameterDigest: parameterDigest)
    }

    func trainingState() throws -> TrainingStateRecord {
        let json = try TrainingResume.canonicalJSON(config)
        return TrainingStateRecord(
            trainer: Self.trainerKind, step: step, worldSize: communicator.size, batchPerRank: config.data.batchSize,
            globalBatchSize: sampler.globalBatchSize, accumulateGradBatches: config.trainer.accumulateGradBatches,
            seed: config.trainer.seed, dataset: dataset.identity, datasetCount: dataset.count,
            configFingerprint: try TrainingResume.configFingerprint(json),
            modelFingerprint: TrainingResume.modelFingerprint(model.orderedStateDict()), config: json, configSource: configSource,
            scaleFactor: nil, emaUpdateCount: nil)
    }

    func restore(from checkpoint: TrainingCheckpoint, state: TrainingStateRecord) throws {
        let path = checkpoint.directory.path
        guard state.dataset == dataset.identity else {
            throw TrainingCheckpointError(path: path, file: TrainingStateRecord.fileName,
                                          "dataset: the checkpoint was trained on '\(state.dataset)', the config gives '\(dataset.identity)'")
        }
        try TrainingStart.load(checkpoint, Self.weightsFile, into: model)
        try OptimizerCheckpoint.load(optimizer, name: "classifier", from: checkpoint)
        let ranks = try RankTrainingState.readAll(from: checkpoint)
        let file = RankTrainingState.fileName(rank: communicator.rank % ranks.count, worldSize: ranks.count)
        let mine = try RankTrainingState.resharded(ranks, rank: communicator.rank, worldSize: communicator.size,
                                                   file: (path as NSString).appendingPathComponent(file), replicated: [Self.flipKey])
        sampler = try DistributedSampler(datasetCount: dataset.count, globalBatchSize: sampler.globalBatchSize,
                                         worldSize: communicator.size, rank: communicator.rank, seed: config.trainer.seed,
                                         shuffle: true, cursor: mine.cursor)
        flipGenerator = try mine.generator(Self.flipKey, file: file)
        metricWindow = mine.metricWindow
        step = state.step
        if communicator.isRoot { try reporter.resume(atStep: step) }
    }
}
