import Checkpoint
import Data
import Diffusion
import Distributed
import Foundation
import LatentCache
import Models
import NN
import Tensor
import XCTest
@testable import Training

final class LDMTrainerTests: XCTestCase {
    var tiny: TinyLatentCache!

    override func setUpWithError() throws { tiny = try TinyLatentCache() }
    override func tearDown() { tiny?.remove() }

    func train(_ yaml: String, resume: String? = nil) throws -> LDMTrainer {
        let trainer = try LDMTrainer.start(config: try tiny.config(yaml), communicator: SingleProcessCommunicator(), resume: resume)
        try trainer.train()
        return trainer
    }

    func weights(_ url: URL) throws -> [String: [Float]] {
        try SafeTensors.read(url).allTensors().mapValues(\.scalars)
    }

    /// n steps ≡ k steps, stop, resume, n − k steps: weights, EMA, optimizer-driven values,
    /// scale factor and the logged metrics, bit for bit.
    func testResumeContinuesExactlyIncludingEMAAndScaleFactor() throws {
        let evaluation = "{every: 3, samples: 4}"
        let straight = try train(tiny.yaml(run: "straight", maxSteps: 6, checkpointEvery: 3, evaluation: evaluation))
        _ = try train(tiny.yaml(run: "split", maxSteps: 3, checkpointEvery: 3, evaluation: evaluation))
        // A record the interrupted run wrote after its last checkpoint is dropped on resume.
        try HeldOutDiffusionLoss.append(.init(count: 1, mse: 1, bucketMSE: [1], bucketCounts: [1]), step: 5,
                                        to: tiny.run("split").appendingPathComponent("heldout.jsonl"))
        let resumed = try train(tiny.yaml(run: "split", maxSteps: 6, checkpointEvery: 3, evaluation: evaluation), resume: "latest")
        XCTAssertEqual(resumed.step, 6)
        XCTAssertEqual(resumed.model.scaleFactor, straight.model.scaleFactor)
        let a = tiny.run("straight").appendingPathComponent("checkpoints/step-00000006")
        let b = tiny.run("split").appendingPathComponent("checkpoints/step-00000006")
        assertBitEqual(try weights(a.appendingPathComponent("ldm.safetensors")), try weights(b.appendingPathComponent("ldm.safetensors")), "weights")
        assertBitEqual(try weights(a.appendingPathComponent("ema.safetensors")), try weights(b.appendingPathComponent("ema.safetensors")), "EMA")
        assertBitEqual(try weights(tiny.run("straight").appendingPathComponent("ldm.safetensors")),
                       try weights(tiny.run("split").appendingPathComponent("ldm.safetensors")), "final model")
        let metrics = { (run: String) in try String(contentsOf: self.tiny.run(run).appendingPathComponent("metrics.jsonl"), encoding: .utf8)
            .split(separator: "\n").map { line -> [String: Double] in
                var r = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Double]
                r["seconds_per_step"] = nil
                return r
            } }
        // Reaching max_steps logs a partial window (docs/CHECKPOINTS.md), so the split run has an
        // extra line at step 3 and a one-step window at 4; the windows both runs close alike agree.
        let straightLines = try metrics("straight"), splitLines = try metrics("split")
        XCTAssertEqual(straightLines.map { $0["step"]! }, [2, 4, 6])
        XCTAssertEqual(splitLines.map { $0["step"]! }, [2, 3, 4, 6])
        XCTAssertEqual(straightLines[0], splitLines[0])
        XCTAssertEqual(straightLines[2], splitLines[3])
        // The held-out log: a record per evaluation, none repeated by the resume.
        let heldOut = { (run: String) in try String(contentsOf: self.tiny.run(run).appendingPathComponent("heldout.jsonl"), encoding: .utf8)
            .split(separator: "\n").map { (try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any])["step"] as! Int } }
        XCTAssertEqual(try heldOut("straight"), [3, 6])
        XCTAssertEqual(try heldOut("split"), [3, 6])
        let state = try TrainingCheckpoint(directory: b).json(TrainingStateRecord.self, TrainingStateRecord.fileName)
        XCTAssertEqual(state.emaUpdateCount, 6)
        XCTAssertEqual(state.scaleFactor, straight.model.scaleFactor)
    }

    /// scale_factor = 1/std of the first global batch's posterior samples, computed here
    /// independently from the same reader order and noise stream; recorded in the cache.
    func testScaleFactorIsOneOverTheStdOfTheFirstBatch() throws {
        let trainer = try train(tiny.yaml(run: "scale", maxSteps: 1, batch: 4))
        let reader = try LatentCacheReader(directory: tiny.cache, globalBatchSize: 4, seed: 5)
        var g = RandomGenerator(seed: 5).derived(2, 0)
        let z = try reader.nextBatch().sample(globalBatchNoise: &g, slice: (0, 1)).scalars.map(Double.init)
        let mean = z.reduce(0, +) / Double(z.count)
        let std = (z.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(z.count - 1)).squareRoot()
        XCTAssertEqual(Double(trainer.model.scaleFactor), 1 / std, accuracy: 1e-5 / std)
        XCTAssertEqual(try LatentCacheManifest.read(from: tiny.cache).scaleFactor, trainer.model.scaleFactor)
        let saved = try LatentDiffusion.load(from: tiny.run("scale").appendingPathComponent("ldm.safetensors"))
        XCTAssertEqual(saved.0.scaleFactor, trainer.model.scaleFactor)
    }

    func testTrainingLowersTheLossAndTheEMAFollowsTheReferenceDecay() throws {
        let yaml = tiny.yaml(run: "learn", maxSteps: 40, batch: 4, lr: "2.0e-4")
        let trainer = try train(yaml)
        let lines = try String(contentsOf: tiny.run("learn").appendingPathComponent("metrics.jsonl"), encoding: .utf8)
            .split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Double] }
        let losses = lines.compactMap { $0["loss"] }
        XCTAssertEqual(losses.count, 20)
        XCTAssertTrue(losses.allSatisfy(\.isFinite))
        XCTAssertLessThan(losses.suffix(5).reduce(0, +), losses.prefix(5).reduce(0, +), "\(losses)")
        XCTAssertTrue(lines.allSatisfy { ($0["grad_norm"] ?? .nan).isFinite })
        let ema = try XCTUnwrap(trainer.ema)
        XCTAssertEqual(ema.updateCount, 40)
        XCTAssertEqual(ema.nextDecay, min(0.9999, 42.0 / 51.0), accuracy: 1e-12)
        // The weight update is timed once per step, inside the step's time.
        XCTAssertEqual(trainer.updateTime.calls, 40)
        XCTAssertGreaterThan(trainer.updateTime.seconds, 0)
        XCTAssertLessThan(trainer.updateTime.seconds, trainer.stepTime.seconds)
    }

    func testStepTimeLineGivesTheUpdateShare() {
        XCTAssertEqual(StepTimeSummary.line(steps: 4, seconds: 2, updateSeconds: 0.5),
                       "step time: 4 steps in 2.000 s (0.500 s a step); weight update (gradient norm and clipping, optimiser, EMA) 0.500 s (25.00 %)")
        XCTAssertEqual(StepTimeSummary.line(steps: 0, seconds: 0, updateSeconds: 0),
                       "step time: 0 steps in 0.000 s (no steps); weight update (gradient norm and clipping, optimiser, EMA) 0.000 s (-)")
    }

    func testHeldOutLossIsDeterministicAndIndependentOfTheBatchSize() throws {
        let trainer = try train(tiny.yaml(run: "held", maxSteps: 2))
        let a = try HeldOutDiffusionLoss(cache: tiny.cache, split: "test", samples: 0, seed: 9, batchSize: 3)
        let b = try HeldOutDiffusionLoss(cache: tiny.cache, split: "test", samples: 0, seed: 9, batchSize: 8)
        let ra = try a.evaluate(trainer.model, communicator: SingleProcessCommunicator())
        let rb = try b.evaluate(trainer.model, communicator: SingleProcessCommunicator())
        XCTAssertEqual(ra.count, 8)
        XCTAssertEqual(ra.bucketCounts.reduce(0, +), 8)
        XCTAssertEqual(ra.mse, rb.mse, accuracy: 1e-6 * ra.mse)
        XCTAssertTrue(ra.mse.isFinite && ra.mse > 0)
        let lines = try String(contentsOf: tiny.run("held").appendingPathComponent("heldout.jsonl"), encoding: .utf8)
        XCTAssertTrue(lines.contains("\"eps_mse\""), lines)
    }

    func testUnconditionalAndADMModelsTrain() throws {
        for key in ["none", "adm"] {
            let trainer = try train(tiny.yaml(run: key, maxSteps: 2, key: key))
            XCTAssertEqual(trainer.step, 2)
            let (model, _) = try LatentDiffusion.load(from: tiny.run(key).appendingPathComponent("ldm.safetensors"))
            XCTAssertEqual(model.config.conditioning.key.rawValue, key)
            if key == "adm" { XCTAssertEqual(model.unet.config.numClasses, 3) }   // 2 classes + the null class
        }
    }

    /// A VQ cache stores the pre-quantisation latents (no posterior); the LDM trains on them as
    /// they are and its grids decode through the quantiser.
    func testTrainsOnAVQCacheAndDecodesThroughTheQuantizer() throws {
        let vq = try TinyLatentCache(regularizer: .vq)
        defer { vq.remove() }
        XCTAssertEqual(try LatentCacheManifest.read(from: vq.cache).autoencoder.regularizer, "vq")
        XCTAssertNil(try LatentCacheReader(directory: vq.cache, globalBatchSize: 2, seed: 1).nextBatch().logVariance)
        let trainer = try LDMTrainer.start(config: try vq.config(vq.yaml(run: "vq", maxSteps: 2,
                                                                        sampling: "{every: 2, steps: 2, per_class: 2}")),
                                           communicator: SingleProcessCommunicator())
        try trainer.train()
        XCTAssertTrue(trainer.model.scaleFactor.isFinite && trainer.model.scaleFactor > 0)
        XCTAssertTrue(FileManager.default.fileExists(atPath: vq.run("vq").appendingPathComponent("images/samples_step000002.png").path))
    }

    func testSampleGridHasARowPerClass() throws {
        _ = try train(tiny.yaml(run: "grid", maxSteps: 1, sampling: "{every: 1, steps: 3, per_class: 3}"))
        let grid = try PNG.read(tiny.run("grid").appendingPathComponent("images/samples_step000001.png"))
        XCTAssertGreaterThanOrEqual(grid.width, 600)
        // 2 classes → 2 rows of 3 images (enlarged), with 2-pixel borders.
        let scale = (grid.width - 8) / (3 * 16)
        XCTAssertEqual(grid.height, 2 * 16 * scale + 3 * 2)
    }

    // MARK: Bad input

    func testAClassConditionalConfigOnACacheWithoutLabelsIsRefused() throws {
        let unlabelled = try TinyLatentCache(labelled: false)
        defer { unlabelled.remove() }
        XCTAssertThrowsError(try LDMTrainer.start(config: try unlabelled.config(unlabelled.yaml(run: "x", maxSteps: 1)),
                                                  communicator: SingleProcessCommunicator()).train()) { error in
            XCTAssertTrue("\(error)".contains("no class labels"), "\(error)")
        }
    }

    func testLatentsThatDoNotFitTheUNetAreRefusedByName() throws {
        let deep = "{in_channels: 3, out_channels: 3, model_channels: 32, channel_mult: [1, 1, 1, 1, 1], num_res_blocks: 1, "
            + "attention_resolutions: [], num_head_channels: 16, use_spatial_transformer: true, legacy: false, context_dim: 16}"
        XCTAssertThrowsError(try LDMTrainer(config: try tiny.config(tiny.yaml(run: "x", maxSteps: 1, unet: deep)),
                                            communicator: SingleProcessCommunicator())) { error in
            XCTAssertTrue("\(error)".contains("divisible by 16"), "\(error)")
            XCTAssertTrue("\(error)".contains(self.tiny.cache.path), "\(error)")
        }
        let wide = "{in_channels: 4, out_channels: 4, model_channels: 32, channel_mult: [1, 2], num_res_blocks: 1, "
            + "attention_resolutions: [], num_head_channels: 16, use_spatial_transformer: true, legacy: false, context_dim: 16}"
        XCTAssertThrowsError(try LDMTrainer(config: try tiny.config(tiny.yaml(run: "x", maxSteps: 1, unet: wide)),
                                            communicator: SingleProcessCommunicator())) { error in
            XCTAssertTrue("\(error)".contains("in_channels is 4"), "\(error)")
            // The path named is the cache's, and the error says so.
            XCTAssertTrue("\(error)".hasPrefix("cache \(self.tiny.cache.path): "), "\(error)")
        }
    }

    func testInvalidConfigsNameTheKey() throws {
        let cases: [(String, String)] = [
            (tiny.yaml(run: "x", maxSteps: 1, ucgRate: 1.5), "model.conditioning.ucg_rate"),
            (tiny.yaml(run: "x", maxSteps: 1, sampling: "{steps: 500}"), "sampling.steps"),
            (tiny.yaml(run: "x", maxSteps: 1).replacingOccurrences(of: "context_dim: 16", with: "context_dim: 8, num_classes: 4"),
             "model.unet.num_classes"),
        ]
        for (yaml, key) in cases {
            XCTAssertThrowsError(try LDMTrainer(config: try tiny.config(yaml), communicator: SingleProcessCommunicator())) { error in
                XCTAssertTrue("\(error)".contains(key), "\(error)")
            }
        }
        XCTAssertThrowsError(try tiny.config(tiny.yaml(run: "x", maxSteps: 1, extraModel: "  unet_typo: 1"))) { error in
            XCTAssertTrue("\(error)".contains("unet_typo"), "\(error)")
        }
    }

    func testResumeRefusesAnotherModelConfiguration() throws {
        _ = try train(tiny.yaml(run: "r", maxSteps: 2, checkpointEvery: 2))
        XCTAssertThrowsError(try train(tiny.yaml(run: "r", maxSteps: 4, ucgRate: 0.5), resume: "latest")) { error in
            XCTAssertTrue("\(error)".contains("model.conditioning.ucg_rate"), "\(error)")
        }
    }
}
