import Checkpoint
import Data
import Distributed
import Foundation
import Models
import NN
import Tensor

/// The autoencoder trainer's checkpoints: what it saves in the shared directory/shard/commit
/// layout (`TrainingCheckpointWriter`) and how it resumes from one.
///
/// Files: `autoencoder.safetensors` (weights with the architecture in the metadata, as
/// `FirstStageModel.save`), `discriminator.safetensors` (weights and BatchNorm buffers),
/// `optimizer.{autoencoder,discriminator}.rank-R-of-W.safetensors` (moments, sharded),
/// `rank-R-of-W.json` (cursor, generators, metric window), `trainer_state.json` and, when
/// known, `config.yaml`; `manifest.json` last.
extension AutoencoderTrainer {
    static let trainerKind = "autoencoder"
    static let weightsFile = "autoencoder.safetensors"
    static let discriminatorFile = "discriminator.safetensors"
    static let noiseKey = "posterior_noise"
    static let dropoutKey = "model_dropout"

    /// Builds a trainer, from `--resume` (`latest` or a checkpoint directory) when given.
    ///
    /// On resume the checkpoint's global batch is kept: the batch per rank becomes global /
    /// ranks (refused when that does not divide), and the config must agree with the saved
    /// one except for `TrainingResume.changeableKeys`.
    public static func start(config: AutoencoderTrainingConfig, communicator: Communicator,
                             lpipsWeights: URL = URL(fileURLWithPath: LPIPS.defaultWeightsPath),
                             resume: String? = nil, configSource: String? = nil) throws -> AutoencoderTrainer {
        var config = config
        var batch = config.data.batchSize
        let fresh = config
        let found = try TrainingStart.locate(kind: trainerKind, resume: resume, runDirectory: config.trainer.runDirectory,
                                             communicator: communicator, batchPerRank: &batch,
                                             currentConfigJSON: { try TrainingResume.canonicalJSON(fresh) })
        config.data.batchSize = batch
        let checkpoint = found?.checkpoint, saved = found?.state
        let trainer = try AutoencoderTrainer(config: config, communicator: communicator, lpipsWeights: lpipsWeights)
        trainer.configSource = configSource
        if let checkpoint, let saved {
            try trainer.restore(from: checkpoint, state: saved)
        } else if let path = config.model.ckptPath {
            try trainer.warmStart(from: path, ignoring: config.model.ignoreKeys ?? [])
        }
        return trainer
    }

    /// The generator dropout layers draw from (shared by the model's modules).
    var modelRandomSource: RandomSource {
        switch model {
        case .kl(let m): return m.randomSource
        case .vq(let m): return m.randomSource
        }
    }

    /// Every saved tensor's name and shape, model then discriminator.
    var modelFingerprint: String {
        TrainingResume.modelFingerprint(model.module.orderedStateDict().map { ("autoencoder.\($0.0)", $0.1) }
            + loss.discriminator.orderedStateDict().map { ("discriminator.\($0.0)", $0.1) })
    }

    func trainingState() throws -> TrainingStateRecord {
        let json = try TrainingResume.canonicalJSON(config)
        return TrainingStateRecord(
            trainer: Self.trainerKind, step: step, worldSize: communicator.size, batchPerRank: config.data.batchSize,
            globalBatchSize: sampler.globalBatchSize, accumulateGradBatches: config.trainer.accumulateGradBatches,
            seed: config.trainer.seed, dataset: dataset.identity, datasetCount: dataset.count,
            configFingerprint: try TrainingResume.configFingerprint(json), modelFingerprint: modelFingerprint,
            config: json, configSource: configSource, scaleFactor: nil, emaUpdateCount: nil)
    }

    /// Every parameter and buffer of the autoencoder and the discriminator, in order.
    var replicatedTensors: [Tensor] {
        model.module.orderedStateDict().map(\.1) + loss.discriminator.orderedStateDict().map(\.1)
    }

    func rankState(parameterDigest: UInt64) -> RankTrainingState {
        RankTrainingState(rank: communicator.rank, worldSize: communicator.size, cursor: sampler.cursor,
                          generators: [Self.noiseKey: noiseGenerator, Self.dropoutKey: modelRandomSource.generator],
                          metricWindow: metricWindow, parameterDigest: parameterDigest)
    }

    var namedOptimizers: [(String, Adam)] {
        [("autoencoder", autoencoderOptimizer), ("discriminator", discriminatorOptimizer)]
    }

    /// BatchNorm running statistics are rank 0's, as at the start of every step (they differ
    /// between ranks by design only without synchronised BatchNorm).
    func prepareCheckpoint() throws {
        try communicator.broadcast(loss.discriminator.namedBuffers().map(\.1), root: 0)
    }

    func writeSharedCheckpointFiles(_ writer: TrainingCheckpointWriter, state: TrainingStateRecord) throws {
        try writer.writeFile(Self.weightsFile) {
            try FirstStageModel.save(model, config: config.model.autoencoder, step: step, to: $0)
        }
        try writer.writeTensors(Self.discriminatorFile, loss.discriminator.stateDict(), metadata: ["ldm.step": String(step)])
    }

    /// Writes `<run_dir>/checkpoints/step-N/` (collective: every rank calls it at the same
    /// step), then applies the retention rule on rank 0.
    public func saveCheckpoint() throws { try commitCheckpoint() }

    /// Puts the checkpoint's state into this freshly built trainer.
    func restore(from checkpoint: TrainingCheckpoint, state: TrainingStateRecord) throws {
        let path = checkpoint.directory.path
        guard state.dataset == dataset.identity else {
            throw TrainingCheckpointError(path: path, file: TrainingStateRecord.fileName,
                                          "dataset: the checkpoint was trained on '\(state.dataset)' (\(state.datasetCount) "
                                          + "images), the config gives '\(dataset.identity)' (\(dataset.count) images)")
        }
        guard state.modelFingerprint == modelFingerprint else {
            throw TrainingCheckpointError(path: path, file: TrainingStateRecord.fileName,
                                          "model_fingerprint \(state.modelFingerprint) differs from this model's "
                                          + "\(modelFingerprint): other parameter names or shapes")
        }
        try load(checkpoint, Self.weightsFile, into: model.module)
        try load(checkpoint, Self.discriminatorFile, into: loss.discriminator)
        try OptimizerCheckpoint.load(autoencoderOptimizer, name: "autoencoder", from: checkpoint)
        try OptimizerCheckpoint.load(discriminatorOptimizer, name: "discriminator", from: checkpoint)

        let ranks = try RankTrainingState.readAll(from: checkpoint)
        let file = RankTrainingState.fileName(rank: communicator.rank % ranks.count, worldSize: ranks.count)
        let mine = try RankTrainingState.resharded(ranks, rank: communicator.rank, worldSize: communicator.size,
                                                   file: (path as NSString).appendingPathComponent(file),
                                                   replicated: [Self.noiseKey])
        sampler = try DistributedSampler(datasetCount: dataset.count, globalBatchSize: sampler.globalBatchSize,
                                         worldSize: communicator.size, rank: communicator.rank,
                                         seed: config.trainer.seed, shuffle: true, cursor: mine.cursor)
        noiseGenerator = try mine.generator(Self.noiseKey, file: file)
        modelRandomSource.generator = try mine.generator(Self.dropoutKey, file: file)
        metricWindow = mine.metricWindow
        step = state.step
        if communicator.isRoot { try reporter.resume(atStep: step) }
        if checkpoint.worldSize != communicator.size {
            reporter.say("resume: world size \(checkpoint.worldSize) -> \(communicator.size): data order and optimizer "
                + "state and posterior noise carry over; per-rank dropout generators are re-derived (see docs/CHECKPOINTS.md)")
        }
    }

    private func load(_ checkpoint: TrainingCheckpoint, _ file: String, into module: Module) throws {
        try TrainingStart.load(checkpoint, file, into: module)
    }
}
