import Checkpoint
import Data
import Distributed
import Foundation
import NN
import Tensor
import TestSupport
import XCTest
@testable import Training

/// The resume contract through the `ldm` binary: a process killed while writing a
/// checkpoint, a SIGTERM, and two ranks under mpirun (same world, 2 → 1 → 2 ranks).
final class ResumeProcessTests: XCTestCase {
    var tiny: TinyRun!

    override func setUpWithError() throws { tiny = try TinyRun() }
    override func tearDown() { tiny.remove() }

    func ldm(_ config: URL, _ extra: [String] = [], ranks: Int = 1, environment: [String: String] = [:],
             whileRunning: ((Process) -> Void)? = nil) throws -> ProcessOutcome {
        try Launcher.ldm(["train-autoencoder", "--config", config.path] + extra, ranks: ranks, environment: environment,
                         whileRunning: whileRunning)
    }

    func assertSucceeded(_ outcome: ProcessOutcome, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(outcome.status, 0, outcome.all, file: file, line: line)
        XCTAssertFalse(outcome.killedBySignal, outcome.all, file: file, line: line)
    }

    func testKillDuringCheckpointWriteKeepsThePreviousCheckpointAndResumeIsExact() throws {
        let full = try tiny.configFile("full.yaml", tiny.yaml(run: "full", maxSteps: 6, discStart: 2, checkpointEvery: 2))
        let split = try tiny.configFile("split.yaml", tiny.yaml(run: "split", maxSteps: 6, discStart: 2, checkpointEvery: 2))
        assertSucceeded(try ldm(full, ["--resume", "latest"]))

        // Rank 0 SIGKILLs itself at step 4 after every shard is written, before the manifest.
        let killed = try ldm(split, ["--resume", "latest"], environment: [TrainingCheckpointWriter.crashBeforeCommitVariable: "4"])
        XCTAssertTrue(killed.killedBySignal && killed.status == SIGKILL, "expected SIGKILL: \(killed.status)\n\(killed.all)")
        let store = TrainingCheckpointStore(runDirectory: tiny.runDirectory("split"))
        XCTAssertEqual(store.allDirectories().map { "\($0.step):\($0.committed)" }, ["2:true", "4:false"])
        XCTAssertTrue(FileManager.default.fileExists(atPath: tiny.checkpoint("split", step: 4)
            .appendingPathComponent("autoencoder.safetensors").path), "the shards of step 4 were written")
        XCTAssertNoThrow(try TrainingCheckpoint(directory: tiny.checkpoint("split", step: 2)).verifyAll())

        let resumed = try ldm(split, ["--resume", "latest"])
        assertSucceeded(resumed)
        XCTAssertTrue(resumed.stdout.contains("resume: step 2 from"), resumed.stdout)
        try assertSameTraining(tiny.runDirectory("full"), tiny.runDirectory("split"), step: 6)
        // The interrupted directory was rewritten and committed; config.yaml is verbatim.
        XCTAssertEqual(store.committed().map(\.step), [2, 4, 6])
        XCTAssertEqual(try String(contentsOf: tiny.checkpoint("split", step: 6).appendingPathComponent("config.yaml"), encoding: .utf8),
                       try String(contentsOf: split, encoding: .utf8))
    }

    func testSIGTERMWritesACheckpointAtTheNextStepAndExitsCleanly() throws {
        let config = try tiny.configFile("long.yaml", tiny.yaml(run: "long", maxSteps: 100_000, discStart: 2, logEvery: 1))
        let metrics = tiny.runDirectory("long").appendingPathComponent("metrics.jsonl")
        let outcome = try ldm(config) { process in
            // Wait for the first logged step, then ask for a stop as Slurm would.
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline {
                if let text = try? String(contentsOf: metrics, encoding: .utf8), !text.isEmpty { break }
                usleep(20_000)
            }
            kill(process.processIdentifier, SIGTERM)
        }
        assertSucceeded(outcome)
        XCTAssertTrue(outcome.stdout.contains("stop requested: checkpoint of step"), outcome.stdout)
        let committed = TrainingCheckpointStore(runDirectory: tiny.runDirectory("long")).committed()
        XCTAssertEqual(committed.count, 1)
        let step = try XCTUnwrap(committed.first?.step)
        XCTAssertGreaterThanOrEqual(step, 1)
        XCTAssertLessThan(step, 100_000)
        XCTAssertEqual(try loggedLosses(tiny.runDirectory("long")).count, step, "one metrics line per step up to the stop")
    }

    /// Two ranks: n uninterrupted ≡ k, stop, resume, n − k, bit for bit.
    func testTwoRanksResumeBitExactly() throws {
        let full = try tiny.configFile("full.yaml", tiny.yaml(run: "full", maxSteps: 6, discStart: 2, logEvery: 1))
        let split = try tiny.configFile("split.yaml", tiny.yaml(run: "split", maxSteps: 6, discStart: 2, logEvery: 1))
        assertSucceeded(try ldm(full, ranks: 2))
        assertSucceeded(try ldm(split, ["--max-steps", "3"], ranks: 2))
        let saved = try TrainingCheckpoint(directory: tiny.checkpoint("split", step: 3))
        XCTAssertEqual(saved.worldSize, 2)
        XCTAssertTrue(saved.fileNames.contains(OptimizerCheckpoint.fileName("autoencoder", rank: 1, worldSize: 2)))
        assertSucceeded(try ldm(split, ["--resume", "latest"], ranks: 2))
        try assertSameTraining(tiny.runDirectory("full"), tiny.runDirectory("split"), step: 6)
    }

    /// The step-3 checkpoint of 2 ranks resumed on 1 rank (batch per rank 4 keeps the global
    /// batch 4), and that run's checkpoint resumed on 2 ranks again.
    func testResumeFromTwoRanksOntoOneAndBackOntoTwo() throws {
        let split = try tiny.configFile("split.yaml", tiny.yaml(run: "split", maxSteps: 3, discStart: 2))
        assertSucceeded(try ldm(split, ranks: 2))
        let twoRankCheckpoint = tiny.checkpoint("split", step: 3)
        let saved = try TrainingCheckpoint(directory: twoRankCheckpoint)
        XCTAssertEqual(saved.worldSize, 2)

        // 2 → 1: in-process, the re-assembled state must be exactly the checkpoint's.
        let config = try tiny.config(run: "one", maxSteps: 5, discStart: 2)
        let one = try AutoencoderTrainer.start(config: config, communicator: SingleProcessCommunicator(),
                                               resume: twoRankCheckpoint.path)
        XCTAssertEqual(one.step, 3)
        XCTAssertEqual(one.config.data.batchSize, 4)
        XCTAssertEqual(one.sampler.cursor, DistributedSampler.Cursor(epoch: 1, batchInEpoch: 1), "3 global batches of 4 in 10 images")
        try assertOptimizer(one.autoencoderOptimizer, equalsShardsOf: "autoencoder", in: saved)
        try assertOptimizer(one.discriminatorOptimizer, equalsShardsOf: "discriminator", in: saved)
        let weights = try saved.tensors("autoencoder.safetensors")
        for (name, tensor) in one.model.module.orderedStateDict() {
            XCTAssertEqual(try weights.tensor(named: name).scalars.map(\.bitPattern), tensor.scalars.map(\.bitPattern), name)
        }
        // …and it trains on, then goes back to 2 ranks.
        try one.train()
        XCTAssertEqual(one.step, 5)
        let again = try tiny.configFile("one.yaml", tiny.yaml(run: "one", maxSteps: 6, discStart: 2))
        let back = try ldm(again, ["--resume", "latest"], ranks: 2)
        assertSucceeded(back)
        XCTAssertTrue(back.stdout.contains("world size 1 -> 2"), back.stdout)
        let final = try TrainingCheckpoint(directory: tiny.checkpoint("one", step: 6))
        XCTAssertEqual(final.worldSize, 2)
        XCTAssertEqual(try final.json(TrainingStateRecord.self, TrainingStateRecord.fileName).globalBatchSize, 4)
        let steps = try loggedLosses(tiny.runDirectory("one")).map { Int($0["step"]!) }
        XCTAssertEqual(steps, [4, 5, 6], "log_every 2 and each run's last step, across two world sizes")
    }

    func assertOptimizer(_ optimizer: Adam, equalsShardsOf name: String, in checkpoint: TrainingCheckpoint,
                         file: StaticString = #filePath, line: UInt = #line) throws {
        var moments: [String: Tensor] = [:]
        var counts: [String: Int] = [:]
        for rank in 0..<checkpoint.worldSize {
            let shard = try checkpoint.tensors(OptimizerCheckpoint.fileName(name, rank: rank, worldSize: checkpoint.worldSize))
            for key in shard.names { moments[key] = try shard.tensor(named: key) }
            counts.merge(try JSONDecoder().decode([String: Int].self,
                                                  from: Data(shard.metadata[OptimizerCheckpoint.stepCountsKey]!.utf8))) { a, _ in a }
        }
        XCTAssertEqual(optimizer.stepCounts(), counts, file: file, line: line)
        let state = optimizer.stateDict()
        XCTAssertEqual(Set(state.keys), Set(moments.keys), file: file, line: line)
        for (key, tensor) in moments {
            XCTAssertEqual(state[key]?.scalars.map(\.bitPattern), tensor.scalars.map(\.bitPattern), key, file: file, line: line)
        }
    }
}
