import Checkpoint
import Evaluation
import Foundation
import Models
import Tensor
import TestSupport
import XCTest
@testable import Training

/// `ldm train-classifier`, `ldm evaluate ldm` and `ldm evaluate autoencoder` as users run
/// them, on one process and under real `mpirun -np 2`: the classifier trains to identical
/// replicas equal to one process on the global batch, and the reports do not depend on the
/// number of ranks.
final class EvaluationProcessTests: XCTestCase {
    var tiny: TinyLatentCache!

    override func setUpWithError() throws { tiny = try TinyLatentCache(trainCount: 32, testCount: 12) }
    override func tearDown() { tiny?.remove() }

    func assertSucceeded(_ outcome: ProcessOutcome, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(outcome.status, 0, outcome.all, file: file, line: line)
        XCTAssertFalse(outcome.killedBySignal, outcome.all, file: file, line: line)
    }

    func dataSection(batch: Int) -> String {
        "data: {dataset: image-folder, path: \(tiny.root.appendingPathComponent("train").path), "
            + "validation_path: \(tiny.root.appendingPathComponent("test").path), channels: 1, resolution: 16, batch_size: \(batch)}"
    }

    func classifierConfig(run: String, batch: Int, steps: Int = 12) throws -> URL {
        try tiny.configFile("\(run).yaml", """
        model:
          base_learning_rate: 2.0e-4
          classifier: {resolution: 16, num_classes: 2, channels: [8, 16], convs_per_level: 1, norm_groups: 4, feature_dim: 8}
        \(dataSection(batch: batch))
        trainer: {max_steps: \(steps), log_every: 4, checkpoint_every: 100, run_dir: \(tiny.run(run).path), seed: 3}

        """)
    }

    func trainClassifier(_ run: String, ranks: Int, batch: Int) throws -> ProcessOutcome {
        try Launcher.ldm(["train-classifier", "--config", try classifierConfig(run: run, batch: batch).path], ranks: ranks, timeout: 120)
    }

    func weights(_ run: String) throws -> [String: [Float]] {
        let file = try SafeTensors.read(tiny.run(run).appendingPathComponent("classifier.safetensors"))
        return try Dictionary(uniqueKeysWithValues: file.names.map { ($0, try file.tensor(named: $0).scalars) })
    }

    func testClassifierOnTwoRanksEqualsOneProcessOnTheGlobalBatch() throws {
        let one = try trainClassifier("c1", ranks: 1, batch: 8), two = try trainClassifier("c2", ranks: 2, batch: 4)
        assertSucceeded(one)
        assertSucceeded(two)
        XCTAssertTrue(one.stdout.contains("held-out accuracy on"), one.stdout)
        let a = try weights("c1"), b = try weights("c2")
        XCTAssertEqual(Set(a.keys), Set(b.keys))
        for key in a.keys { assertClose(Tensor(shape: [a[key]!.count], scalars: a[key]!), Tensor(shape: [b[key]!.count], scalars: b[key]!), atol: 2e-5, rtol: 1e-4) }
        let report = try EvaluationReport.read(from: tiny.run("c1").appendingPathComponent("evaluation.json"))
        XCTAssertEqual(report.imageCount, 12)
        XCTAssertNotNil(report.metrics["accuracy"]?.mean)
    }

    func testTheClassifierLearnsTheClasses() throws {
        // Blobs of radius 3 vs 6: an easy task the classifier must get right on held-out images.
        let outcome = try Launcher.ldm(["train-classifier", "--config", try classifierConfig(run: "learn", batch: 8, steps: 60).path], timeout: 120)
        assertSucceeded(outcome)
        let report = try EvaluationReport.read(from: tiny.run("learn").appendingPathComponent("evaluation.json"))
        let accuracy = try XCTUnwrap(report.metrics["accuracy"]?.mean)
        XCTAssertGreaterThanOrEqual(accuracy, 0.9, outcome.stdout)
    }

    func testLDMReportIsTheSameOnOneAndTwoRanksAndBadRequestsAreNamed() throws {
        assertSucceeded(try trainClassifier("cls", ranks: 1, batch: 8))
        let ldmConfig = try tiny.configFile("ldm.yaml", tiny.yaml(run: "ldm", maxSteps: 2, batch: 4))
        assertSucceeded(try Launcher.ldm(["train-ldm", "--config", ldmConfig.path], timeout: 120))
        let dataConfig = try tiny.configFile("data.yaml", dataSection(batch: 4))
        let classifier = tiny.run("cls").appendingPathComponent("classifier.safetensors").path
        func evaluate(_ out: String, ranks: Int, _ extra: [String] = []) throws -> ProcessOutcome {
            try Launcher.ldm(["evaluate", "ldm", "--ldm", tiny.run("ldm").path, "--data-config", dataConfig.path,
                              "--classifier", classifier, "--features", "classifier", "--n", "10", "--steps", "3",
                              "--guidance", "1,2", "--seed", "4", "--out", tiny.run(out).path] + extra, ranks: ranks, timeout: 180)
        }
        let one = try evaluate("e1.json", ranks: 1), two = try evaluate("e2.json", ranks: 2)
        assertSucceeded(one)
        assertSucceeded(two)
        XCTAssertTrue(one.stdout.contains("guidance"), one.stdout)
        func report(_ name: String) throws -> [String: Any] {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: tiny.run(name))) as? [String: Any])
        }
        let a = try report("e1.json"), b = try report("e2.json")
        XCTAssertEqual(a["world_size"] as? Int, 1)
        XCTAssertEqual(b["world_size"] as? Int, 2)
        XCTAssertEqual(a["classifier_fingerprint"] as? String, b["classifier_fingerprint"] as? String)
        let resultsA = try XCTUnwrap(a["results"] as? [[String: Any]]), resultsB = try XCTUnwrap(b["results"] as? [[String: Any]])
        XCTAssertEqual(resultsA.count, 2)
        for (ra, rb) in zip(resultsA, resultsB) {
            let da = try XCTUnwrap((ra["distances"] as? [[String: Any]])?.first), db = try XCTUnwrap((rb["distances"] as? [[String: Any]])?.first)
            for key in ["fd", "precision", "recall"] {
                let x = try XCTUnwrap(da[key] as? Double), y = try XCTUnwrap(db[key] as? Double)
                XCTAssertTrue(x.isFinite && abs(x - y) <= 1e-3 * max(1, abs(x)), "\(key): \(x) vs \(y)")
            }
            XCTAssertEqual(ra["sample_accuracy"] as? Double, rb["sample_accuracy"] as? Double)
            XCTAssertNotNil(ra["inception_score"] as? Double)
            XCTAssertEqual(ra["samples"] as? Int, 20)
            XCTAssertTrue(FileManager.default.fileExists(atPath: try XCTUnwrap(ra["grid"] as? String)))
        }
        let heldOutA = try XCTUnwrap(a["heldout_diffusion_loss"] as? [String: Any]), heldOutB = try XCTUnwrap(b["heldout_diffusion_loss"] as? [String: Any])
        let mseA = try XCTUnwrap(heldOutA["mse"] as? Double), mseB = try XCTUnwrap(heldOutB["mse"] as? Double)
        XCTAssertTrue(mseA.isFinite && abs(mseA - mseB) <= 1e-5 * mseA, "\(mseA) vs \(mseB)")
        XCTAssertEqual(heldOutA["count"] as? Int, 12)
        XCTAssertNotNil(a["real_accuracy"] as? Double)
        // Deterministic: the same run again gives the same numbers.
        assertSucceeded(try evaluate("e3.json", ranks: 1))
        let c = try report("e3.json")
        XCTAssertEqual(((c["results"] as? [[String: Any]])?.first?["distances"] as? [[String: Any]])?.first?["fd"] as? Double,
                       (resultsA.first?["distances"] as? [[String: Any]])?.first?["fd"] as? Double)

        // Too few samples for the feature dimension: says how many are needed.
        let few = try evaluate("bad.json", ranks: 1, ["--n", "4"])
        XCTAssertNotEqual(few.status, 0)
        XCTAssertTrue(few.all.contains("use at least 9"), few.all)
        // A classifier made for other images is refused by name.
        let other = try tiny.configFile("other.yaml", """
        model:
          classifier: {resolution: 32, num_classes: 2, channels: [8, 16], convs_per_level: 1, norm_groups: 4, feature_dim: 8}
        data: {dataset: image-folder, path: \(tiny.root.appendingPathComponent("train").path), channels: 1, resolution: 32, batch_size: 4}
        trainer: {max_steps: 1, run_dir: \(tiny.run("other").path)}

        """)
        assertSucceeded(try Launcher.ldm(["train-classifier", "--config", other.path], timeout: 60))
        let mismatch = try Launcher.ldm(["evaluate", "ldm", "--ldm", tiny.run("ldm").path, "--data-config", dataConfig.path,
                                         "--classifier", tiny.run("other").appendingPathComponent("classifier.safetensors").path,
                                         "--features", "classifier", "--n", "10", "--steps", "2", "--out", tiny.run("bad2.json").path], timeout: 60)
        XCTAssertNotEqual(mismatch.status, 0)
        XCTAssertTrue(mismatch.all.contains("the classifier takes 1×32×32 images"), mismatch.all)
    }

    func testAutoencoderReportHasTheReconstructionFDAndIsTheSameOnTwoRanks() throws {
        assertSucceeded(try trainClassifier("cls", ranks: 1, batch: 8))
        let dataConfig = try tiny.configFile("data.yaml", dataSection(batch: 4))
        let classifier = tiny.run("cls").appendingPathComponent("classifier.safetensors").path
        func evaluate(_ out: String, ranks: Int, command: [String] = ["evaluate", "autoencoder"]) throws -> ProcessOutcome {
            try Launcher.ldm(command + ["--autoencoder", tiny.autoencoderURL.path, "--data-config", dataConfig.path,
                                        "--classifier", classifier, "--lpips-weights", "/nonexistent", "--out", tiny.run(out).path],
                             ranks: ranks, timeout: 120)
        }
        let one = try evaluate("a1.json", ranks: 1), two = try evaluate("a2.json", ranks: 2, command: ["evaluate-autoencoder"])
        assertSucceeded(one)
        assertSucceeded(two)
        let a = try EvaluationReport.read(from: tiny.run("a1.json")), b = try EvaluationReport.read(from: tiny.run("a2.json"))
        let fa = try XCTUnwrap(a.distances?.first), fb = try XCTUnwrap(b.distances?.first)
        XCTAssertEqual(fa.network, "classifier")
        XCTAssertTrue(fa.fd.isFinite && fa.fd > 0, "\(fa.fd)")
        XCTAssertEqual(fa.fd, fb.fd, accuracy: 1e-6 * max(1, fa.fd))
        // Ranks see other batch sizes, and the convolution algorithm follows the batch
        // (Winograd from 32 tiles): the same images to rounding. One image missed or counted
        // twice moves the mean by about 1e-2.
        let psnr = try XCTUnwrap(a.metrics["psnr"]?.mean)
        XCTAssertEqual(psnr, b.metrics["psnr"]?.mean ?? .nan, accuracy: 1e-6 * max(1, abs(psnr)))
        XCTAssertTrue(FileManager.default.fileExists(atPath: tiny.run("a1.png").path))
        XCTAssertTrue(one.stdout.contains("rFD classifier"), one.stdout)
    }

    func testTheTrainerLogsSampleQualityWithTheClassifierAndRefusesTooFewSamples() throws {
        assertSucceeded(try trainClassifier("cls", ranks: 1, batch: 8))
        let classifier = tiny.run("cls").appendingPathComponent("classifier.safetensors").path
        let config = try tiny.configFile("ldm.yaml", tiny.yaml(run: "ldm", maxSteps: 2, batch: 4,
                                                               evaluation: "{every: 0, samples: 6, classifier: \(classifier), fd_samples: 10, fd_steps: 2}"))
        let one = try Launcher.ldm(["train-ldm", "--config", config.path], timeout: 120)
        assertSucceeded(one)
        XCTAssertTrue(one.stdout.contains("samples (10, DDIM 2 steps"), one.stdout)
        let line = try String(contentsOf: tiny.run("ldm").appendingPathComponent("samples.jsonl"), encoding: .utf8)
        let record = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        XCTAssertEqual(record["step"] as? Int, 2)
        let fd = try XCTUnwrap(record["fd"] as? Double)
        XCTAssertTrue(fd.isFinite && fd > 0, "\(fd)")
        XCTAssertNotNil(record["accuracy"] as? Double)
        // Two ranks split the samples and report the same figures.
        let two = try Launcher.ldm(["train-ldm", "--config", config.path, "--run-dir", tiny.run("ldm2").path], ranks: 2, timeout: 180)
        assertSucceeded(two)
        let line2 = try String(contentsOf: tiny.run("ldm2").appendingPathComponent("samples.jsonl"), encoding: .utf8)
        let record2 = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line2.utf8)) as? [String: Any])
        let fd2 = try XCTUnwrap(record2["fd"] as? Double)
        XCTAssertTrue(abs(fd - fd2) <= 1e-3 * fd, "\(fd) vs \(fd2)")
        // Fewer samples than the feature dimension needs: named, before any step.
        let few = try tiny.configFile("few.yaml", tiny.yaml(run: "few", maxSteps: 2, batch: 4,
                                                            evaluation: "{every: 0, samples: 6, classifier: \(classifier), fd_samples: 5}"))
        let refused = try Launcher.ldm(["train-ldm", "--config", few.path], timeout: 120)
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.all.contains("evaluation.fd_samples 5 is too few"), refused.all)
    }
}
