import Checkpoint
import Data
import Distributed
import Foundation
import NN
import Tensor
import XCTest
@testable import Training

/// The resume contract in one process: n uninterrupted steps ≡ k steps, stop, resume, n − k
/// steps, bit for bit; and the refusals.
final class AutoencoderResumeTests: XCTestCase {
    var tiny: TinyRun!

    override func setUpWithError() throws {
        tiny = try TinyRun()
        StopRequest.shared.reset()
    }

    override func tearDown() {
        StopRequest.shared.reset()
        tiny.remove()
    }

    func train(_ config: AutoencoderTrainingConfig, resume: String? = nil) throws -> AutoencoderTrainer {
        let trainer = try AutoencoderTrainer.start(config: config, communicator: SingleProcessCommunicator(), resume: resume)
        try trainer.train()
        return trainer
    }

    /// Uninterrupted n steps vs k steps + resume (checkpoints at the end only), the losses of
    /// every step logged (log_every 1). A resume in the middle of a logging window is the stop
    /// test's case: a run that ends at max_steps logs its partial window before saving.
    func checkContract(n: Int, k: Int, discStart: Int) throws {
        _ = try train(try tiny.config(run: "full", maxSteps: n, discStart: discStart, logEvery: 1))
        let first = try train(try tiny.config(run: "split", maxSteps: k, discStart: discStart, logEvery: 1))
        XCTAssertEqual(first.step, k)
        let resumed = try train(try tiny.config(run: "split", maxSteps: n, discStart: discStart, logEvery: 1), resume: "latest")
        XCTAssertEqual(resumed.step, n)
        try assertSameTraining(tiny.runDirectory("full"), tiny.runDirectory("split"), step: n)
    }

    func testResumeIsBitExactWithTheDiscriminatorOff() throws {
        try checkContract(n: 5, k: 3, discStart: 1000)
        let state = try TrainingCheckpoint(directory: tiny.checkpoint("split", step: 5))
        let shard = try state.tensors(OptimizerCheckpoint.fileName("discriminator", rank: 0, worldSize: 1))
        XCTAssertTrue(shard.names.isEmpty, "the discriminator's optimizer never stepped")
    }

    func testResumeIsBitExactWithBothOptimizersActive() throws {
        try checkContract(n: 6, k: 3, discStart: 2)
        let state = try TrainingCheckpoint(directory: tiny.checkpoint("split", step: 6))
        let shard = try state.tensors(OptimizerCheckpoint.fileName("discriminator", rank: 0, worldSize: 1))
        let counts = try JSONDecoder().decode([String: Int].self, from: Data(shard.metadata[OptimizerCheckpoint.stepCountsKey]!.utf8))
        XCTAssertEqual(Set(counts.values), [4], "the discriminator stepped at steps 3…6 (0-based 2…5)")
        XCTAssertFalse(shard.names.isEmpty)
    }

    /// Stopped at step 1 with log_every 2: the checkpoint carries the partial metric window,
    /// and the resumed run's line for step 2 is the uninterrupted one.
    func testStopRequestWritesACheckpointAtTheNextStepAndResumesExactly() throws {
        _ = try train(try tiny.config(run: "full", maxSteps: 4, discStart: 2))
        StopRequest.shared.request()
        let stopped = try train(try tiny.config(run: "split", maxSteps: 4, discStart: 2))
        XCTAssertTrue(stopped.stoppedEarly)
        XCTAssertEqual(stopped.step, 1)
        XCTAssertEqual(TrainingCheckpointStore(runDirectory: tiny.runDirectory("split")).committed().map(\.step), [1])
        StopRequest.shared.reset()
        let resumed = try train(try tiny.config(run: "split", maxSteps: 4, discStart: 2), resume: "latest")
        XCTAssertFalse(resumed.stoppedEarly)
        try assertSameTraining(tiny.runDirectory("full"), tiny.runDirectory("split"), step: 4)
    }

    func testRetentionKeepsTheNewestAndEveryKth() throws {
        _ = try train(try tiny.config(run: "r", maxSteps: 7, discStart: 1000, checkpointEvery: 1,
                                      extraTrainer: ", keep_last: 2, keep_every: 3"))
        XCTAssertEqual(TrainingCheckpointStore(runDirectory: tiny.runDirectory("r")).allDirectories().map(\.step), [3, 6, 7])
    }

    func testLatestWithoutCheckpointStartsFresh() throws {
        let trainer = try AutoencoderTrainer.start(config: try tiny.config(run: "fresh", maxSteps: 1, discStart: 1000),
                                                   communicator: SingleProcessCommunicator(), resume: "latest")
        XCTAssertEqual(trainer.step, 0)
    }

    /// A committed step-2 checkpoint in run "base", copied to a new run for each refusal.
    func baseCheckpoint() throws -> URL {
        _ = try train(try tiny.config(run: "base", maxSteps: 2, discStart: 1))
        return tiny.checkpoint("base", step: 2)
    }

    func copyRun(_ name: String) throws -> URL {
        let target = tiny.runDirectory(name)
        try FileManager.default.copyItem(at: tiny.runDirectory("base"), to: target)
        return TrainingCheckpointStore(runDirectory: target).directory(step: 2)
    }

    func assertRefused(_ config: AutoencoderTrainingConfig, mentioning parts: [String], file: StaticString = #filePath,
                       line: UInt = #line) {
        XCTAssertThrowsError(try AutoencoderTrainer.start(config: config, communicator: SingleProcessCommunicator(),
                                                          resume: "latest"), file: file, line: line) { error in
            for part in parts { XCTAssertTrue("\(error)".contains(part), "\(part) not in: \(error)", file: file, line: line) }
        }
    }

    func testMismatchesAreRefusedNamingTheFileAndKey() throws {
        _ = try baseCheckpoint()

        // Another model config.
        _ = try copyRun("other-model")
        var config = try tiny.config(run: "other-model", maxSteps: 4, discStart: 1)
        config.model.loss.discStart = 3
        config.model.autoencoder.zChannels = 8
        assertRefused(config, mentioning: ["trainer_state.json", "model.loss.disc_start: checkpoint 1, now 3",
                                           "model.autoencoder.z_channels"])

        // Another dataset.
        _ = try copyRun("other-data")
        let otherImages = tiny.root.appendingPathComponent("other-images")
        try TinyRun.writeImages(to: otherImages, count: 12, seed: 2)
        assertRefused(try tiny.config(run: "other-data", maxSteps: 4, discStart: 1, images: otherImages),
                      mentioning: ["trainer_state.json", "dataset", "10 images", "12 images"])

        // A missing shard.
        let missing = try copyRun("missing")
        let shard = OptimizerCheckpoint.fileName("autoencoder", rank: 0, worldSize: 1)
        try FileManager.default.removeItem(at: missing.appendingPathComponent(shard))
        assertRefused(try tiny.config(run: "missing", maxSteps: 4, discStart: 1), mentioning: [shard, "missing"])

        // A corrupt file.
        let corrupt = try copyRun("corrupt")
        let weights = corrupt.appendingPathComponent("autoencoder.safetensors")
        var bytes = try Data(contentsOf: weights)
        bytes[bytes.count / 2] ^= 0x40
        try bytes.write(to: weights)
        assertRefused(try tiny.config(run: "corrupt", maxSteps: 4, discStart: 1),
                      mentioning: ["autoencoder.safetensors", "checksum mismatch"])

        // Loop settings may change.
        _ = try copyRun("longer")
        var longer = try tiny.config(run: "longer", maxSteps: 3, discStart: 1)
        longer.trainer.logEvery = 1
        XCTAssertEqual(try AutoencoderTrainer.start(config: longer, communicator: SingleProcessCommunicator(), resume: "latest").step, 2)
    }

    func testGlobalBatchMustDivideOverTheNewWorld() throws {
        XCTAssertEqual(try TrainingResume.batchPerRank(globalBatch: 4, worldSize: 1, checkpoint: "c"), 4)
        XCTAssertEqual(try TrainingResume.batchPerRank(globalBatch: 4, worldSize: 2, checkpoint: "c"), 2)
        XCTAssertThrowsError(try TrainingResume.batchPerRank(globalBatch: 4, worldSize: 3, checkpoint: "c")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("global_batch_size 4 is not divisible by the new world size 3"), text)
            XCTAssertTrue(text.contains("trainer_state.json") && text.contains("(1, 2, 4)"), text)
        }
    }

    func testRankStatesCarryOverExactlyOrAreReDerivedForAnotherWorldSize() throws {
        let cursor = DistributedSampler.Cursor(epoch: 3, batchInEpoch: 1)
        var window = MetricWindow()
        window.add(["rec_loss": 1])
        var window1 = MetricWindow()
        window1.add(["rec_loss": 3])
        let saved = (0..<2).map { r in
            RankTrainingState(rank: r, worldSize: 2, cursor: cursor,
                              generators: ["posterior_noise": RandomGenerator(seed: 7).derived(1, UInt64(r))],
                              metricWindow: r == 0 ? window : window1)
        }
        // Same world: exactly what was saved.
        XCTAssertEqual(try RankTrainingState.resharded(saved, rank: 1, worldSize: 2, file: "f"), saved[1])
        // One rank: cursor kept, windows averaged, generator derived (deterministically).
        let one = try RankTrainingState.resharded(saved, rank: 0, worldSize: 1, file: "f")
        XCTAssertEqual(one.cursor, cursor)
        XCTAssertEqual(one.metricWindow.sums, ["rec_loss": 2])
        XCTAssertEqual(one.metricWindow.count, 1)
        XCTAssertNotEqual(one.generators, saved[0].generators)
        XCTAssertEqual(one, try RankTrainingState.resharded(saved, rank: 0, worldSize: 1, file: "f"))
        // Three ranks: three distinct streams.
        let three = try (0..<3).map { try RankTrainingState.resharded(saved, rank: $0, worldSize: 3, file: "f") }
        XCTAssertEqual(Set(three.map { $0.generators["posterior_noise"]!.words }).count, 3)
    }

    func testGeneratorStatesRoundTripExactlyThroughJSON() throws {
        var g = RandomGenerator(seed: .max)
        for _ in 0..<5 { _ = g.next() }
        let data = try JSONEncoder().encode(GeneratorState(g))
        XCTAssertEqual(try JSONDecoder().decode(GeneratorState.self, from: data).generator(file: "f", key: "k"), g)
        XCTAssertThrowsError(try GeneratorState(RandomGenerator(seed: 1)).with(words: ["0", "0", "0", "0"]).generator(file: "f", key: "k"))
    }

    func testConfigDifferencesLeaveOutLoopSettings() throws {
        var a = AutoencoderTrainingConfig()
        var b = a
        b.trainer.maxSteps += 10
        b.trainer.runDirectory = "elsewhere"
        b.data.batchSize = 1
        XCTAssertEqual(try TrainingResume.configDifferences(saved: TrainingResume.canonicalJSON(a),
                                                            current: TrainingResume.canonicalJSON(b)), [])
        XCTAssertEqual(try TrainingResume.configFingerprint(TrainingResume.canonicalJSON(a)),
                       try TrainingResume.configFingerprint(TrainingResume.canonicalJSON(b)))
        a.trainer.seed = 1
        XCTAssertEqual(try TrainingResume.configDifferences(saved: TrainingResume.canonicalJSON(a),
                                                            current: TrainingResume.canonicalJSON(b)),
                       ["trainer.seed: checkpoint 1, now 23"])
    }
}

extension GeneratorState {
    func with(words: [String]) -> GeneratorState {
        var copy = self
        copy.words = words
        return copy
    }
}
