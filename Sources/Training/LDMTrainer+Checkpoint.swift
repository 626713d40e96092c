import Checkpoint
import Data
import Distributed
import Foundation
import LatentCache
import Models
import NN
import Tensor

/// The LDM trainer's checkpoints, in the shared directory/shard/commit layout: `ldm.safetensors`
/// (weights under reference keys, the model config and scale factor in the metadata),
/// `ema.safetensors` (EMA shadows, update count in the metadata), `optimizer.ldm.rank-R-of-W…`,
/// `rank-R-of-W.json` (cache cursor, generators, metric window), `trainer_state.json`
/// (scale factor, EMA update count), `config.yaml`; `manifest.json` last.
extension LDMTrainer {
    static let weightsFile = "ldm.safetensors"
    static let emaFile = "ema.safetensors"
    static let posteriorKey = "posterior_noise"
    static let diffusionKey = "diffusion_noise"
    static let dropoutKey = "model_dropout"
    static let emaCountKey = "ldm.ema_update_count"

    /// Builds a trainer, from `--resume` (`latest` or a checkpoint directory) when given.
    public static func start(config: LDMTrainingConfig, communicator: Communicator, resume: String? = nil,
                             configSource: String? = nil) throws -> LDMTrainer {
        var config = config
        var batch = config.data.batchSize
        let fresh = config
        let found = try TrainingStart.locate(kind: trainerKind, resume: resume, runDirectory: config.trainer.runDirectory,
                                             communicator: communicator, batchPerRank: &batch,
                                             currentConfigJSON: { try TrainingResume.canonicalJSON(fresh) },
                                             changeableKeys: LDMTrainingConfig.changeableKeys)
        config.data.batchSize = batch
        let trainer = try LDMTrainer(config: config, communicator: communicator)
        trainer.configSource = configSource
        if let found { try trainer.restore(from: found.checkpoint, state: found.state) }
        return trainer
    }

    var modelFingerprint: String {
        TrainingResume.modelFingerprint(model.orderedStateDict())
    }

    var replicatedTensors: [Tensor] {
        model.orderedStateDict().map(\.1) + (ema?.shadows.map(\.1) ?? [])
    }

    var namedOptimizers: [(String, Adam)] { [("ldm", optimizer)] }

    func trainingState() throws -> TrainingStateRecord {
        let json = try TrainingResume.canonicalJSON(config)
        return TrainingStateRecord(
            trainer: Self.trainerKind, step: step, worldSize: communicator.size, batchPerRank: config.data.batchSize,
            globalBatchSize: reader.sampler.globalBatchSize, accumulateGradBatches: config.trainer.accumulateGradBatches,
            seed: config.trainer.seed, dataset: datasetIdentity, datasetCount: reader.sampleCount,
            configFingerprint: try TrainingResume.configFingerprint(json, changeable: LDMTrainingConfig.changeableKeys),
            modelFingerprint: modelFingerprint, config: json, configSource: configSource,
            scaleFactor: scaleFactorPending ? nil : model.scaleFactor, emaUpdateCount: ema?.updateCount)
    }

    func rankState(parameterDigest: UInt64) -> RankTrainingState {
        RankTrainingState(rank: communicator.rank, worldSize: communicator.size, cursor: reader.cursor,
                          generators: [Self.posteriorKey: posteriorGenerator, Self.diffusionKey: diffusionGenerator,
                                       Self.dropoutKey: model.unet.randomSource.generator],
                          metricWindow: metricWindow, parameterDigest: parameterDigest)
    }

    func writeSharedCheckpointFiles(_ writer: TrainingCheckpointWriter, state: TrainingStateRecord) throws {
        try writer.writeFile(Self.weightsFile) { try model.save(to: $0, metadata: modelMetadata) }
        if let ema {
            try writer.writeTensors(Self.emaFile, ema.stateDict(), metadata: [Self.emaCountKey: String(ema.updateCount)])
        }
    }

    public func saveCheckpoint() throws { try commitCheckpoint() }

    /// Puts the checkpoint's state into this freshly built trainer.
    func restore(from checkpoint: TrainingCheckpoint, state: TrainingStateRecord) throws {
        let path = checkpoint.directory.path
        guard state.dataset == datasetIdentity else {
            throw TrainingCheckpointError(path: path, file: TrainingStateRecord.fileName,
                                          "data: the checkpoint was trained on '\(state.dataset)', the config gives '\(datasetIdentity)' "
                                          + "(another cache, autoencoder or split)")
        }
        guard state.modelFingerprint == modelFingerprint else {
            throw TrainingCheckpointError(path: path, file: TrainingStateRecord.fileName,
                                          "model_fingerprint \(state.modelFingerprint) differs from this model's \(modelFingerprint)")
        }
        try TrainingStart.load(checkpoint, Self.weightsFile, into: model)
        if let scale = state.scaleFactor {
            model.setScaleFactor(scale)
            scaleFactorPending = false
        }
        if let ema {
            let file = try checkpoint.tensors(Self.emaFile)
            guard let count = file.metadata[Self.emaCountKey].flatMap(Int.init) else {
                throw TrainingCheckpointError(path: path, file: Self.emaFile, "metadata \(Self.emaCountKey) missing")
            }
            do { try ema.load(stateDict: try file.allTensors(), updateCount: count) } catch {
                throw TrainingCheckpointError(path: path, file: Self.emaFile, "\(error)")
            }
        }
        try OptimizerCheckpoint.load(optimizer, name: "ldm", from: checkpoint)
        let ranks = try RankTrainingState.readAll(from: checkpoint)
        let file = RankTrainingState.fileName(rank: communicator.rank % ranks.count, worldSize: ranks.count)
        let mine = try RankTrainingState.resharded(ranks, rank: communicator.rank, worldSize: communicator.size,
                                                   file: (path as NSString).appendingPathComponent(file),
                                                   replicated: [Self.posteriorKey, Self.diffusionKey])
        reader = try LatentCacheReader(directory: cacheDirectory, split: config.data.trainSplit,
                                       globalBatchSize: reader.sampler.globalBatchSize, worldSize: communicator.size,
                                       rank: communicator.rank, seed: config.trainer.seed, window: config.data.shuffleWindow,
                                       cursor: mine.cursor)
        posteriorGenerator = try mine.generator(Self.posteriorKey, file: file)
        diffusionGenerator = try mine.generator(Self.diffusionKey, file: file)
        model.unet.randomSource.generator = try mine.generator(Self.dropoutKey, file: file)
        metricWindow = mine.metricWindow
        step = state.step
        if communicator.isRoot {
            try reporter.resume(atStep: step)
            try HeldOutDiffusionLoss.truncate(runDirectory.appendingPathComponent("heldout.jsonl"), afterStep: step)
            try HeldOutDiffusionLoss.truncate(runDirectory.appendingPathComponent(Self.sampleQualityFile), afterStep: step)
        }
        if checkpoint.worldSize != communicator.size {
            reporter.say("resume: world size \(checkpoint.worldSize) -> \(communicator.size): data order, noise streams, optimizer "
                + "and EMA state carry over; per-rank dropout generators are re-derived (see docs/CHECKPOINTS.md)")
        }
    }
}
