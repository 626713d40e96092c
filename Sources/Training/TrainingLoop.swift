import Checkpoint
import Distributed
import Foundation
import NN
import Tensor

/// What a trainer plugs into the one training loop: its step, its periodic work, its
/// checkpoint files and its final outputs. The loop itself (logging, the stop vote, the
/// checkpoint cadence and commit, replica digests, communication summary) is shared, so
/// every trainer logs, stops, checkpoints and resumes the same way.
protocol TrainingTask: AnyObject {
    /// "autoencoder", "ldm", …: written into every checkpoint, checked on resume.
    static var trainerKind: String { get }
    var communicator: Communicator { get }
    var trainerConfig: TrainerConfig { get }
    var reporter: ProgressReporter { get }
    var runDirectory: URL { get }
    /// Completed optimisation steps.
    var step: Int { get set }
    /// Metrics summed since the last progress line (saved in checkpoints).
    var metricWindow: MetricWindow { get set }
    var stoppedEarly: Bool { get set }
    var stepTime: Stopwatch { get }
    /// The part of `stepTime` after the gradients are complete: gradient norm and clipping,
    /// optimiser steps, EMA.
    var updateTime: Stopwatch { get }
    /// Metric names in the order progress lines show them.
    var metricOrder: [String] { get }

    /// Lines printed once before the first step (model, data, learning rate).
    func runHeader() -> [String]
    /// One optimisation step (all micro-batches, gradient allreduce, update). This rank's metrics.
    func trainStep() throws -> [String: Float]
    /// Periodic work after step `step` has completed (image grids, held-out evaluation).
    /// Collective where it needs to be: every rank calls it at every step.
    func afterStep() throws
    /// Every tensor whose digest must agree between replicas.
    var replicatedTensors: [Tensor] { get }
    /// Rank 0's files of a checkpoint (weights, trainer state, config).
    func writeSharedCheckpointFiles(_ writer: TrainingCheckpointWriter, state: TrainingStateRecord) throws
    /// The optimisers whose moments are saved (sharded over ranks), by name.
    var namedOptimizers: [(String, Adam)] { get }
    /// This rank's state (cursor, generators, metric window).
    func rankState(parameterDigest: UInt64) -> RankTrainingState
    func trainingState() throws -> TrainingStateRecord
    /// Dataset identity written into the manifest.
    var datasetIdentity: String { get }
    /// A digest of the training data's content, compared across ranks before training.
    func dataContentDigest() throws -> String
    /// Called just before the replica digest of a checkpoint (e.g. BatchNorm buffers broadcast).
    func prepareCheckpoint() throws
    /// Outputs of a run that reached `max_steps` (the final model file).
    func finish() throws
    /// The collectives' share of the step time (printed with several ranks).
    var communicationSummary: String { get }
}

extension TrainingTask {
    func prepareCheckpoint() throws {}

    /// Trains to `trainer.max_steps` or until a stop is requested (then checkpoints and returns).
    func runTrainingLoop() throws {
        let trainer = trainerConfig
        try ComputeBackends.validateEnvironment()
        try verifyRanksAgree()
        try requireWritableRunDirectory()
        for line in runHeader() { reporter.say(line) }
        reporter.say("compute backend: \(ComputeBackends.currentSummary)")
        while step < trainer.maxSteps {
            let metrics = try stepTime.time { try trainStep() }
            metricWindow.add(metrics)
            step += 1
            if step % trainer.logEvery == 0 || step == trainer.maxSteps {
                let averaged = try rankAveraged(metricWindow.means)
                reporter.report(step: step, metrics: averaged, order: metricOrder)
                metricWindow = MetricWindow()
            }
            try afterStep()
            // Every rank takes part in the vote every step, so all stop at the same step.
            let stopping = try StopRequest.shared.agreed(by: communicator)
            if step % trainer.checkpointEvery == 0 || step == trainer.maxSteps || stopping { try commitCheckpoint() }
            if stopping {
                reporter.say("stop requested: checkpoint of step \(step) written; resume with --resume latest")
                stoppedEarly = true
                reportStepTime()
                return
            }
        }
        reportStepTime()
        try finish()
    }

    /// Every rank must train with rank 0's config and data (collective; see RankConsistency).
    func verifyRanksAgree() throws {
        guard communicator.size > 1 else { return }
        let config = try trainingState().config
        try RankConsistency.verify(["config": XXH64.hexString(XXH64.hash(config)), "dataset": datasetIdentity,
                                    "data content": try dataContentDigest()], communicator: communicator)
    }

    /// A run directory that cannot take files (read-only, full, no permission) fails here, by
    /// path, instead of after the work of the steps before the first grid or checkpoint.
    func requireWritableRunDirectory() throws {
        let probe = runDirectory.appendingPathComponent(".write-probe-rank\(communicator.rank)-\(getpid())")
        do {
            try FileManager.default.createDirectory(at: runDirectory, withIntermediateDirectories: true)
        } catch {
            throw FileError("create the run directory", path: runDirectory.path, detail: error.localizedDescription)
        }
        try AtomicFile.write(Data("probe\n".utf8), to: probe)
        try FileManager.default.removeItem(at: probe)
    }

    func reportStepTime() {
        reporter.say(StepTimeSummary.line(steps: stepTime.calls, seconds: stepTime.seconds, updateSeconds: updateTime.seconds))
        if communicator.size > 1 { reporter.say(communicationSummary) }
    }

    /// Each metric's mean over ranks (a collective).
    func rankAveraged(_ metrics: [String: Float]) throws -> [String: Float] {
        let keys = metrics.keys.sorted()
        var values = keys.map { Double(metrics[$0]!) }
        try values.withUnsafeMutableBufferPointer { try communicator.allreduceMean($0) }
        return Dictionary(uniqueKeysWithValues: zip(keys, values.map(Float.init)))
    }

    var replicaDigest: UInt64 { ReplicaDigest.digest(replicatedTensors) }

    /// Writes `<run_dir>/checkpoints/step-N/` (collective: every rank calls it at the same
    /// step): rank 0's shared files, every rank's optimiser shard and state, the manifest
    /// last; then the retention rule on rank 0.
    func commitCheckpoint() throws {
        if let r = ProcessInfo.processInfo.environment[ReplicaDigest.perturbRankVariable].flatMap(Int.init),
           r == communicator.rank, let first = replicatedTensors.first {
            withoutGrad { first.pointer[0] += 1e-3 }
        }
        try prepareCheckpoint()
        // Diverged replicas are refused before anything is written (docs/DISTRIBUTED.md).
        let digest = replicaDigest
        try ReplicaDigest.verify(digest, communicator: communicator, step: step)
        let store = TrainingCheckpointStore(runDirectory: runDirectory)
        let writer = try TrainingCheckpointWriter(store: store, step: step, communicator: communicator)
        var state = try trainingState()
        state.computeBackend = ComputeBackends.currentName
        if state.computeBackend == "onednn" { state.convolutionAlgorithm = ConvolutionAlgorithm.current.rawValue }
        if communicator.isRoot {
            try writeSharedCheckpointFiles(writer, state: state)
            try writer.writeJSON(TrainingStateRecord.fileName, state)
            if let source = state.configSource { try writer.writeData("config.yaml", Data(source.utf8)) }
        }
        for (name, optimizer) in namedOptimizers { try OptimizerCheckpoint.write(optimizer, name: name, writer: writer) }
        try writer.writeJSON(RankTrainingState.fileName(rank: communicator.rank, worldSize: communicator.size),
                             rankState(parameterDigest: digest))
        try writer.commit(metadata: ["trainer": Self.trainerKind, "dataset": datasetIdentity,
                                     "config_fingerprint": state.configFingerprint, "model_fingerprint": state.modelFingerprint])
        if communicator.isRoot {
            try store.prune(keepLast: trainerConfig.keepLast, keepEvery: trainerConfig.keepEvery)
        }
        reporter.say("checkpoint: \(writer.directory.path)")
    }
}

/// How a trainer starts: fresh, or from `--resume` with the checkpoint's global batch and the
/// checks every trainer shares (trainer kind, config). Returns the checkpoint and its state.
public enum TrainingStart {
    public static func locate(kind: String, resume: String?, runDirectory: String, communicator: Communicator,
                              batchPerRank: inout Int, currentConfigJSON: () throws -> String,
                              changeableKeys: Set<String> = TrainingResume.changeableKeys)
        throws -> (checkpoint: TrainingCheckpoint, state: TrainingStateRecord)? {
        let say = { (message: String) in
            if communicator.isRoot { print(message); fflush(stdout) }
        }
        let store = TrainingCheckpointStore(runDirectory: URL(fileURLWithPath: runDirectory))
        guard let checkpoint = try TrainingResume.locate(resume, store: store, communicator: communicator, say: say) else {
            return nil
        }
        let state = try checkpoint.json(TrainingStateRecord.self, TrainingStateRecord.fileName)
        guard state.trainer == kind else {
            throw TrainingCheckpointError(path: checkpoint.directory.path, file: TrainingStateRecord.fileName,
                                          "written by the \(state.trainer) trainer, not the \(kind) trainer")
        }
        let perRank = try TrainingResume.batchPerRank(globalBatch: state.globalBatchSize, worldSize: communicator.size,
                                                      checkpoint: checkpoint.directory.path)
        if perRank != batchPerRank {
            say("resume: batch per rank \(perRank) (not data.batch_size \(batchPerRank)) keeps the "
                + "checkpoint's global batch \(state.globalBatchSize) on \(communicator.size) rank(s)")
            batchPerRank = perRank
        }
        try TrainingResume.requireSameConfig(saved: state, current: try currentConfigJSON(), checkpoint: checkpoint,
                                             changeable: changeableKeys)
        return (checkpoint, state)
    }

    /// Loads a module from a checkpoint file, strictly, naming the file on failure.
    public static func load(_ checkpoint: TrainingCheckpoint, _ file: String, into module: Module) throws {
        let tensors = try checkpoint.tensors(file).allTensors()
        do {
            try module.load(stateDict: tensors, strict: true)
        } catch {
            throw TrainingCheckpointError(path: checkpoint.directory.path, file: file, "\(error)")
        }
    }
}
