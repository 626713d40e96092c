import Checkpoint
import Foundation
import Models
import Tensor
import TestSupport
import XCTest
@testable import Training

/// `ldm train-ldm` and `ldm sample` as users run them, under real `mpirun -np 2`: identical
/// replicas, 2 ranks ≡ 1 process on the same global batch, exact resume at 2 ranks, and
/// sampling that does not depend on the number of ranks.
final class LDMProcessTests: XCTestCase {
    var tiny: TinyLatentCache!

    override func setUpWithError() throws { tiny = try TinyLatentCache() }
    override func tearDown() { tiny?.remove() }

    func trainLDM(_ run: String, ranks: Int, batch: Int, maxSteps: Int = 4, resume: Bool = false,
                  checkpointEvery: Int = 2) throws -> ProcessOutcome {
        let config = try tiny.configFile("\(run).yaml", tiny.yaml(run: run, maxSteps: maxSteps, batch: batch,
                                                                   checkpointEvery: checkpointEvery,
                                                                   evaluation: "{every: 2, samples: 6}"))
        return try Launcher.ldm(["train-ldm", "--config", config.path] + (resume ? ["--resume", "latest"] : []),
                                ranks: ranks, timeout: 120)
    }

    func assertSucceeded(_ outcome: ProcessOutcome, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(outcome.status, 0, outcome.all, file: file, line: line)
        XCTAssertFalse(outcome.killedBySignal, outcome.all, file: file, line: line)
    }

    func checkpoint(_ run: String, step: Int) throws -> TrainingCheckpoint {
        try TrainingCheckpoint(directory: tiny.run(run).appendingPathComponent(String(format: "checkpoints/step-%08d", step)))
    }

    func tensors(_ run: String, step: Int, _ file: String) throws -> [String: [Float]] {
        try checkpoint(run, step: step).tensors(file).allTensors().mapValues(\.scalars)
    }

    func testTwoRanksAreIdenticalReplicasAndEqualOneProcessOnTheGlobalBatch() throws {
        let two = try trainLDM("two", ranks: 2, batch: 2)
        assertSucceeded(two)
        let one = try trainLDM("one", ranks: 1, batch: 4)
        assertSucceeded(one)
        // Replicas: both ranks recorded the digest of every parameter and EMA shadow (verified by
        // the trainer before each checkpoint).
        for step in [2, 4] {
            let ranks = try RankTrainingState.readAll(from: try checkpoint("two", step: step))
            XCTAssertEqual(ranks.count, 2)
            XCTAssertNotNil(ranks[0].parameterDigest)
            XCTAssertEqual(ranks[0].parameterDigest, ranks[1].parameterDigest)
        }
        // Same global batch, same draws: the same model up to float summation order (the
        // gradient mean over ranks sums in another order than one process's batch).
        let a = try tensors("two", step: 4, "ldm.safetensors"), b = try tensors("one", step: 4, "ldm.safetensors")
        XCTAssertEqual(Set(a.keys), Set(b.keys))
        var worst: Float = 0, at = ""
        for (name, x) in a {
            for (u, v) in zip(x, b[name]!) {
                let d = u.isFinite && v.isFinite ? abs(u - v) : .infinity
                if d > worst { worst = d; at = name }
            }
        }
        XCTAssertLessThan(worst, 2e-5, "largest difference in \(at)")
        let sa = try checkpoint("two", step: 4).json(TrainingStateRecord.self, TrainingStateRecord.fileName)
        let sb = try checkpoint("one", step: 4).json(TrainingStateRecord.self, TrainingStateRecord.fileName)
        XCTAssertEqual(Double(sa.scaleFactor!), Double(sb.scaleFactor!), accuracy: 1e-6)
        // The backend the ranks computed with is recorded and printed in the header.
        let expectedBackend = ProcessInfo.processInfo.environment[ComputeBackends.environmentVariable] ?? "onednn"
        XCTAssertEqual(sa.computeBackend, expectedBackend)
        let expectedAlgorithm = ProcessInfo.processInfo.environment[ConvolutionAlgorithm.environmentVariable] ?? "winograd"
        XCTAssertEqual(sa.convolutionAlgorithm, expectedBackend == "onednn" ? expectedAlgorithm : nil)
        XCTAssertTrue(two.stdout.contains("compute backend: \(expectedBackend)"), two.stdout)
        // The held-out loss is a sum over samples split between ranks: the same number.
        func heldOut(_ run: String) throws -> [Double] {
            try String(contentsOf: tiny.run(run).appendingPathComponent("heldout.jsonl"), encoding: .utf8).split(separator: "\n")
                .map { (try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any])["eps_mse"] as! Double }
        }
        let ha = try heldOut("two"), hb = try heldOut("one")
        XCTAssertEqual(ha.count, 2)
        for (x, y) in zip(ha, hb) { XCTAssertEqual(x, y, accuracy: 1e-4 * y) }
    }

    func testResumeUnderTwoRanksIsBitExact() throws {
        assertSucceeded(try trainLDM("straight", ranks: 2, batch: 2, maxSteps: 4))
        assertSucceeded(try trainLDM("split", ranks: 2, batch: 2, maxSteps: 2))
        let resumed = try trainLDM("split", ranks: 2, batch: 2, maxSteps: 4, resume: true)
        assertSucceeded(resumed)
        XCTAssertTrue(resumed.stdout.contains("resume: step 2"), resumed.stdout)
        for file in ["ldm.safetensors", "ema.safetensors"] {
            assertBitEqual(try tensors("straight", step: 4, file), try tensors("split", step: 4, file), file)
        }
    }

    /// Three steps of 2 samples a rank on two ranks, checkpointed at the end.
    func trainThreeStepsOnTwoRanks(_ run: String, evaluation: String = "{every: 0, samples: 6}",
                                   trainerExtra: String) throws -> ProcessOutcome {
        let config = try tiny.configFile("\(run).yaml", tiny.yaml(run: run, maxSteps: 3, batch: 2, checkpointEvery: 3,
                                                                   evaluation: evaluation, trainerExtra: trainerExtra))
        return try Launcher.ldm(["train-ldm", "--config", config.path], ranks: 2, timeout: 120)
    }

    /// The overlapped gradient allreduce (the default) and the blocking one train the same bits
    /// at two ranks, with two micro-batches per step.
    func testOverlappedAndBlockingAllreduceTrainTheSameBits() throws {
        func run(_ name: String, overlap: Bool) throws -> ProcessOutcome {
            try trainThreeStepsOnTwoRanks(name, trainerExtra: ", accumulate_grad_batches: 2, overlap_allreduce: \(overlap)")
        }
        let overlapped = try run("overlap", overlap: true), blocking = try run("blocking", overlap: false)
        assertSucceeded(overlapped)
        assertSucceeded(blocking)
        XCTAssertTrue(overlapped.stdout.contains("allreduce overlapped with backward"), overlapped.stdout)
        XCTAssertTrue(blocking.stdout.contains("allreduce after backward (not overlapped)"), blocking.stdout)
        let a = try tensors("overlap", step: 3, "ldm.safetensors"), b = try tensors("blocking", step: 3, "ldm.safetensors")
        XCTAssertTrue(a.values.allSatisfy { $0.allSatisfy(\.isFinite) })
        assertBitEqual(a, b, "ldm.safetensors")
    }

    /// The weight update sharded over the two ranks (the default on one machine) and
    /// replicated on both train the same bits: weights, EMA shadows and every optimizer shard.
    func testShardedAndReplicatedWeightUpdatesTrainTheSameBits() throws {
        func run(_ name: String, sharded: Bool) throws -> ProcessOutcome {
            try trainThreeStepsOnTwoRanks(name, evaluation: "{every: 2, samples: 6}",
                                          trainerExtra: ", gradient_clip: 0.05, shard_weight_update: \(sharded)")
        }
        let sharded = try run("sharded", sharded: true), replicated = try run("replicated", sharded: false)
        assertSucceeded(sharded)
        assertSucceeded(replicated)
        XCTAssertTrue(sharded.stdout.contains("weight update: sharded over 2 ranks"), sharded.stdout)
        XCTAssertFalse(replicated.stdout.contains("weight update: sharded"), replicated.stdout)
        XCTAssertTrue(sharded.stdout.contains("sharded update's weight gather"), sharded.stdout)
        let files = ["ldm.safetensors", "ema.safetensors", "optimizer.ldm.rank-00000-of-00002.safetensors",
                     "optimizer.ldm.rank-00001-of-00002.safetensors"]
        for file in files {
            let a = try tensors("sharded", step: 3, file), b = try tensors("replicated", step: 3, file)
            XCTAssertFalse(a.isEmpty, file)
            XCTAssertTrue(a.values.allSatisfy { $0.allSatisfy(\.isFinite) }, file)
            assertBitEqual(a, b, file)
        }
        // Clipping was active (every logged norm above 0.05), so the norm summed over ranks scaled the steps.
        let norms = try String(contentsOf: tiny.run("sharded").appendingPathComponent("metrics.jsonl"), encoding: .utf8)
            .split(separator: "\n").map { (try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any])["grad_norm"] as! Double }
        XCTAssertFalse(norms.isEmpty)
        XCTAssertTrue(norms.allSatisfy { $0.isFinite && $0 > 0.05 }, "\(norms)")
        // The held-out loss at step 2 read the gathered shadows on both ranks.
        let heldOut = { (run: String) in try String(contentsOf: self.tiny.run(run).appendingPathComponent("heldout.jsonl"), encoding: .utf8) }
        XCTAssertEqual(try heldOut("sharded"), try heldOut("replicated"))
    }

    func testSamplingIsTheSameOnOneAndTwoRanksAndNamesEachClass() throws {
        assertSucceeded(try trainLDM("model", ranks: 1, batch: 4, maxSteps: 2))
        let run = tiny.run("model").path
        func sample(_ out: String, ranks: Int, _ extra: [String] = []) throws -> ProcessOutcome {
            try Launcher.ldm(["sample", "--ldm", run, "--n", "3", "--steps", "4", "--guidance", "2", "--seed", "11",
                              "--out", tiny.run(out).path] + extra, ranks: ranks, timeout: 120)
        }
        let one = try sample("s1", ranks: 1), two = try sample("s2", ranks: 2)
        assertSucceeded(one)
        assertSucceeded(two)
        let a = try SafeTensors.read(tiny.run("s1").appendingPathComponent("samples.safetensors"))
        let b = try SafeTensors.read(tiny.run("s2").appendingPathComponent("samples.safetensors"))
        XCTAssertEqual(try a.tensor(named: "images").shape, [6, 1, 16, 16])
        // The same noise per sample; only the batch each sample was computed in differs, which
        // changes GEMM blocking and so the last bits.
        assertClose(try a.tensor(named: "images"), try b.tensor(named: "images"), atol: 1e-4, rtol: 1e-4)
        XCTAssertEqual(try a.tensor(named: "labels").scalars, [0, 0, 0, 1, 1, 1])
        let files = try FileManager.default.contentsOfDirectory(atPath: tiny.run("s1").path)
        XCTAssertTrue(files.contains("grid.png"))
        XCTAssertTrue(files.contains("sample_0004_class1.png"), "\(files)")
        XCTAssertTrue(one.stdout.contains("sample: wrote"), one.stdout)

        // Bad requests: a clear message and a non-zero exit.
        let badClass = try sample("bad1", ranks: 1, ["--class", "5"])
        XCTAssertNotEqual(badClass.status, 0)
        XCTAssertTrue(badClass.all.contains("class 5 is out of range"), badClass.all)
        for steps in ["0", "101"] {
            let badSteps = try Launcher.ldm(["sample", "--ldm", run, "--steps", steps, "--out", tiny.run("bad2").path], timeout: 60)
            XCTAssertNotEqual(badSteps.status, 0)
            XCTAssertTrue(badSteps.all.contains("1 ≤ steps ≤ T = 100"), badSteps.all)
        }
        // Another first stage (same architecture, other weights) is refused by fingerprint.
        let other = tiny.root.appendingPathComponent("other.safetensors")
        let firstStage = try FirstStageModel.load(from: tiny.autoencoderURL)
        firstStage.module.parameters()[0].pointer[0] += 1
        try FirstStageModel.save(firstStage, config: firstStage.config, step: 0, to: other)
        let wrongFirstStage = try sample("bad3", ranks: 1, ["--autoencoder", other.path])
        XCTAssertNotEqual(wrongFirstStage.status, 0)
        XCTAssertTrue(wrongFirstStage.all.contains("is not the first stage this model was trained on"), wrongFirstStage.all)
    }

    /// A diverging run (an absurd learning rate) stops at the step whose loss is not finite,
    /// naming it, and the last checkpoint stays loadable.
    func testANonFiniteLossStopsTheRunAndKeepsTheLastCheckpoint() throws {
        let config = try tiny.configFile("nan.yaml", tiny.yaml(run: "nan", maxSteps: 50, batch: 4, checkpointEvery: 1, lr: "1.0e+30"))
        let out = try Launcher.ldm(["train-ldm", "--config", config.path], timeout: 120)
        XCTAssertNotEqual(out.status, 0, out.all)
        XCTAssertTrue(out.all.contains("diffusion loss at step"), out.all)
        let store = TrainingCheckpointStore(runDirectory: tiny.run("nan"))
        let last = try XCTUnwrap(try store.resolve("latest"))
        let checkpoint = try TrainingCheckpoint(directory: last)
        try checkpoint.verifyAll()
        XCTAssertGreaterThanOrEqual(checkpoint.step, 1)
        XCTAssertNoThrow(try checkpoint.tensors("ldm.safetensors").allTensors())
    }

    func testGuidanceOnAModelTrainedWithoutConditionDropoutWarns() throws {
        let config = try tiny.configFile("noucg.yaml", tiny.yaml(run: "noucg", maxSteps: 1, ucgRate: 0))
        assertSucceeded(try Launcher.ldm(["train-ldm", "--config", config.path], timeout: 120))
        let out = try Launcher.ldm(["sample", "--ldm", tiny.run("noucg").path, "--n", "1", "--steps", "2", "--guidance", "3",
                                    "--out", tiny.run("noucg-samples").path], timeout: 60)
        assertSucceeded(out)
        XCTAssertTrue(out.stdout.contains("warning: --guidance 3.0 on a model trained without condition dropout"), out.stdout)
    }
}

/// Asserts two sets of named tensors are bit-identical, naming the first that is not (without
/// printing whole tensors).
func assertBitEqual(_ a: [String: [Float]], _ b: [String: [Float]], _ what: String = "",
                    file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.keys.sorted(), b.keys.sorted(), what, file: file, line: line)
    for name in a.keys.sorted() {
        guard let x = a[name], let y = b[name] else { continue }
        let same = x.count == y.count && zip(x, y).allSatisfy { $0.bitPattern == $1.bitPattern }
        if !same {
            let i = zip(x, y).enumerated().first { $0.element.0.bitPattern != $0.element.1.bitPattern }?.offset ?? 0
            XCTFail("\(what) \(name) differs (element \(i): \(i < x.count ? x[i] : .nan) vs \(i < y.count ? y[i] : .nan))",
                    file: file, line: line)
            return
        }
    }
}
