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
        let say = { (message: String) in
            if communicator.isRoot { print(message); fflush(stdout) }
        }
        let store = TrainingCheckpointStore(runDirectory: URL(fileURLWithPath: config.trainer.runDirectory))
        let checkpoint = try TrainingResume.locate(resume, store: store, communicator: communicator, say: say)
        var saved: TrainingStateRecord?
        if let checkpoint {
            let state = try checkpoint.json(TrainingStateRecord.self, TrainingStateRecord.fileName)
            guard state.trainer == trainerKind else {
                throw TrainingCheckpointError(path: checkpoint.directory.path, file: TrainingStateRecord.fileName,
                                              "written by the \(state.trainer) trainer, not the \(trainerKind) trainer")
            }
            let perRank = try TrainingResume.batchPerRank(globalBatch: state.globalBatchSize, worldSize: communicator.size,
                                                          checkpoint: checkpoint.directory.path)
            if perRank != config.data.batchSize {
                say("resume: batch per rank \(perRank) (not data.batch_size \(config.data.batchSize)) keeps the "
                    + "checkpoint's global batch \(state.globalBatchSize) on \(communicator.size) rank(s)")
                config.data.batchSize = perRank
            }
            try TrainingResume.requireSameConfig(saved: state, current: try TrainingResume.canonicalJSON(config),
                                                 checkpoint: checkpoint)
            saved = state
        }
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
    var replicaDigest: UInt64 {
        ReplicaDigest.digest(model.module.orderedStateDict().map(\.1) + loss.discriminator.orderedStateDict().map(\.1))
    }

    func rankState(parameterDigest: UInt64) -> RankTrainingState {
        RankTrainingState(rank: communicator.rank, worldSize: communicator.size, cursor: sampler.cursor,
                          generators: [Self.noiseKey: noiseGenerator, Self.dropoutKey: modelRandomSource.generator],
                          metricWindow: metricWindow, parameterDigest: parameterDigest)
    }

    /// Writes `<run_dir>/checkpoints/step-N/` (collective: every rank calls it at the same
    /// step), then applies the retention rule on rank 0.
    public func saveCheckpoint() throws {
        if let r = ProcessInfo.processInfo.environment[ReplicaDigest.perturbRankVariable].flatMap(Int.init),
           r == communicator.rank {
            withoutGrad { model.module.parameters()[0].pointer[0] += 1e-3 }
        }
        // BatchNorm running statistics are rank 0's, as at the start of every step (they differ
        // between ranks by design only without synchronised BatchNorm).
        try communicator.broadcast(loss.discriminator.namedBuffers().map(\.1), root: 0)
        // Diverged replicas are refused before anything is written (docs/DISTRIBUTED.md).
        let digest = replicaDigest
        try ReplicaDigest.verify(digest, communicator: communicator, step: step)
        let store = TrainingCheckpointStore(runDirectory: runDirectory)
        let writer = try TrainingCheckpointWriter(store: store, step: step, communicator: communicator)
        let state = try trainingState()
        if communicator.isRoot {
            try writer.writeFile(Self.weightsFile) {
                try FirstStageModel.save(model, config: config.model.autoencoder, step: step, to: $0)
            }
            try writer.writeTensors(Self.discriminatorFile, loss.discriminator.stateDict(), metadata: ["ldm.step": String(step)])
            try writer.writeJSON(TrainingStateRecord.fileName, state)
            if let configSource { try writer.writeData("config.yaml", Data(configSource.utf8)) }
        }
        try OptimizerCheckpoint.write(autoencoderOptimizer, name: "autoencoder", writer: writer)
        try OptimizerCheckpoint.write(discriminatorOptimizer, name: "discriminator", writer: writer)
        try writer.writeJSON(RankTrainingState.fileName(rank: communicator.rank, worldSize: communicator.size), rankState(parameterDigest: digest))
        try writer.commit(metadata: ["trainer": Self.trainerKind, "dataset": dataset.identity,
                                     "config_fingerprint": state.configFingerprint, "model_fingerprint": state.modelFingerprint])
        if communicator.isRoot {
            try store.prune(keepLast: config.trainer.keepLast, keepEvery: config.trainer.keepEvery)
        }
        reporter.say("checkpoint: \(writer.directory.path)")
    }

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
        let tensors = try checkpoint.tensors(file).allTensors()
        do {
            try module.load(stateDict: tensors, strict: true)
        } catch {
            throw TrainingCheckpointError(path: checkpoint.directory.path, file: file, "\(error)")
        }
    }
}
