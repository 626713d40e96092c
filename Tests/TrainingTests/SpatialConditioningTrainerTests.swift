import Checkpoint
import Data
import Distributed
import Foundation
import LatentCache
import Models
import Tensor
import XCTest
@testable import Training

/// Super-resolution and inpainting on the tiny cache: conditions made from the images the
/// cache was encoded from, exact resume, grids, `ldm sample` and `ldm evaluate ldm` requests,
/// and the mismatches refused by name.
final class SpatialConditioningTrainerTests: XCTestCase {
    var tiny: TinyLatentCache!

    override func setUpWithError() throws { tiny = try TinyLatentCache() }
    override func tearDown() { tiny?.remove() }

    var images: String {
        "{dataset: image-folder, path: \(tiny.root.appendingPathComponent("train").path), "
            + "validation_path: \(tiny.root.appendingPathComponent("test").path), resolution: 16, channels: 1, fit: pad}"
    }

    /// The tiny cache's latents are 3×8×8 (f = 2): super-resolution ×2 adds 1 channel (the
    /// 8×8 low-resolution image), inpainting 3 + 1.
    func yaml(_ task: String, run: String, maxSteps: Int, inChannels: Int? = nil, images: String? = nil,
              checkpointEvery: Int = 1000) -> String {
        let spatial = task == "inpainting" ? "{task: inpainting}" : "{task: super-resolution, factor: 2}"
        let channels = inChannels ?? (task == "inpainting" ? 7 : 4)
        return """
        model:
          base_learning_rate: 1.0e-4
          conditioning: {key: concat, spatial: \(spatial)}
          schedule: {timesteps: 100}
          unet: {in_channels: \(channels), out_channels: 3, model_channels: 32, channel_mult: [1, 2], num_res_blocks: 1, attention_resolutions: [2], num_head_channels: 16, use_spatial_transformer: true, legacy: false}
        data: {cache: \(tiny.cache.path), batch_size: 2, images: \(images ?? self.images)}
        trainer: {max_steps: \(maxSteps), log_every: 2, checkpoint_every: \(checkpointEvery), run_dir: \(tiny.run(run).path), seed: 5}
        sampling: {every: 0, steps: 3, per_class: 3}
        evaluation: {every: 2, samples: 6}

        """
    }

    func train(_ yaml: String, resume: String? = nil) throws -> LDMTrainer {
        let trainer = try LDMTrainer.start(config: try tiny.config(yaml), communicator: SingleProcessCommunicator(), resume: resume)
        try trainer.train()
        return trainer
    }

    func weights(_ url: URL) throws -> [String: [Float]] { try SafeTensors.read(url).allTensors().mapValues(\.scalars) }

    func testBothTasksTrainAndResumeExactly() throws {
        for task in ["super-resolution", "inpainting"] {
            _ = try train(yaml(task, run: "\(task)-straight", maxSteps: 4, checkpointEvery: 2))
            _ = try train(yaml(task, run: "\(task)-split", maxSteps: 2, checkpointEvery: 2))
            let resumed = try train(yaml(task, run: "\(task)-split", maxSteps: 4, checkpointEvery: 2), resume: "latest")
            XCTAssertEqual(resumed.step, 4)
            assertBitEqual(try weights(tiny.run("\(task)-straight").appendingPathComponent("ldm.safetensors")),
                           try weights(tiny.run("\(task)-split").appendingPathComponent("ldm.safetensors")), task)
            let heldOut = try String(contentsOf: tiny.run("\(task)-straight").appendingPathComponent("heldout.jsonl"), encoding: .utf8)
            XCTAssertEqual(heldOut.split(separator: "\n").count, 2, task)
            let grid = try PNG.read(tiny.run("\(task)-straight").appendingPathComponent("images/samples_step000004.png"))
            XCTAssertGreaterThanOrEqual(grid.width, 600, "enlarged to be readable")
            XCTAssertGreaterThan(grid.height, 2 * grid.width / 3 - 20, "three rows (input, model, original) of three")
        }
    }

    func source(_ task: SpatialConditionConfig.Task) throws -> (SpatialConditionSource, LatentCacheReader) {
        let manifest = try LatentCacheManifest.read(from: tiny.cache)
        let images = try ConfigLoader.parse(DataConfig.self, yaml: self.images)
        let firstStage = task == .inpainting ? try FirstStageModel.load(from: tiny.autoencoderURL) : nil
        var config = SpatialConditionConfig(task: task, factor: 2)
        config.boxFraction = 0.5
        let source = try SpatialConditionSource(config: config, images: images, manifest: manifest, splits: ["train", "test"],
                                                cache: tiny.cache.path, seed: 5, firstStage: firstStage)
        let reader = try LatentCacheReader(directory: tiny.cache, split: "test", globalBatchSize: 1, seed: 0, shuffle: false, dropLast: false)
        return (source, reader)
    }

    func testTheSuperResolutionConditionIsTheBicubicDownsampledImage() throws {
        let (source, reader) = try source(.superResolution)
        let batch = try reader.batch(positions: [0, 3])
        let condition = try source.heldOut(batch, split: "test", positions: [0, 3], scaleFactor: 1)
        XCTAssertEqual(condition.shape, [2, 1, 8, 8])
        let dataset = try ImageFolder(root: tiny.root.appendingPathComponent("test"), channels: 1, resolution: 16, fit: .pad)
        for (k, index) in batch.indices.enumerated() {
            let low = try dataset.image(at: index).resized(width: 8, height: 8, filter: .bicubic)
            let expected = low.pixels.map { Float($0) / 127.5 - 1 }
            XCTAssertEqual(Array(condition.scalars[(k * 64)..<((k + 1) * 64)]), expected, "sample \(k)")
        }
        XCTAssertEqual(source.conditionChannels, 1)
    }

    func testInpaintingMasksAreFixedWhenHeldOutAndFreshEveryTrainingStep() throws {
        let (source, reader) = try source(.inpainting)
        let batch = try reader.batch(positions: [0, 1, 2])
        let a = try source.heldOut(batch, split: "test", positions: [0, 1, 2], scaleFactor: 0.5)
        let reordered = source.layouts.reorders
        let b = try source.heldOut(batch, split: "test", positions: [0, 1, 2], scaleFactor: 0.5)
        XCTAssertEqual(a.shape, [3, 4, 8, 8])
        XCTAssertEqual(a.scalars, b.scalars)
        XCTAssertTrue(a.scalars.allSatisfy(\.isFinite))
        // The mask channel is the examples' mask at the latent grid; the latent channels are
        // the first stage's posterior mean of the blanked image times scale_factor.
        let examples = try source.heldOutExamples(split: "test", indices: batch.indices, positions: [0, 1, 2], scaleFactor: 0.5)
        let firstStage = try FirstStageModel.load(from: tiny.autoencoderURL)
        let expected = withoutGrad { firstStage.encodeMode(SpatialInputs.blanked(examples.images, masks: examples.masks!)) * 0.5 }
        for k in 0..<3 {
            let condition = a.slice(alongAxis: 0, k..<k + 1)
            XCTAssertEqual(condition.slice(alongAxis: 1, 3..<4).scalars, examples.masks![k].downsampled(width: 8, height: 8))
            let ours = condition.slice(alongAxis: 1, 0..<3).scalars, reference = expected.slice(alongAxis: 0, k..<k + 1).scalars
            let worst = zip(ours, reference).map { abs($0 - $1) }.max()!
            XCTAssertTrue(worst <= 1e-4, "latent channels differ by \(worst)")   // false on NaN
        }
        let train = try LatentCacheReader(directory: tiny.cache, split: "train", globalBatchSize: 1, seed: 0, shuffle: false, dropLast: false)
        let trainBatch = try train.batch(positions: [0, 1, 2, 3])
        // The frozen encoder's weights were reordered for the first held-out batch only.
        XCTAssertEqual(source.layouts.reorders, reordered, "no weight reordered again")
        let step1 = try source.training(trainBatch, step: 1, scaleFactor: 1)
        let reorderedForTraining = source.layouts.reorders   // a batch size the kernels may lay out anew
        let again = try source.training(trainBatch, step: 1, scaleFactor: 1)
        let step2 = try source.training(trainBatch, step: 2, scaleFactor: 1)
        XCTAssertEqual(step1.scalars, again.scalars, "the same (seed, step, image), the same mask")
        XCTAssertNotEqual(step1.slice(alongAxis: 1, 3..<4).scalars, step2.slice(alongAxis: 1, 3..<4).scalars, "a fresh mask every step")
        XCTAssertEqual(source.layouts.reorders, reorderedForTraining, "each training step reads the weights from the cache")
        #if arch(x86_64)
        XCTAssertGreaterThan(source.layouts.reuses, 0)
        #endif
    }

    func testImagesOtherThanTheCachesAndWrongChannelCountsAreRefused() throws {
        let swapped = "{dataset: image-folder, path: \(tiny.root.appendingPathComponent("test").path), resolution: 16, channels: 1, fit: pad}"
        XCTAssertThrowsError(try train(yaml("super-resolution", run: "swapped", maxSteps: 1, images: swapped))) {
            XCTAssertTrue("\($0)".contains("data.images") && "\($0)".contains("was encoded from"), "\($0)")
        }
        XCTAssertThrowsError(try train(yaml("inpainting", run: "channels", maxSteps: 1, inChannels: 4))) {
            XCTAssertTrue("\($0)".contains("+ 4 condition channels (inpainting)") && "\($0)".contains("it must be 7"), "\($0)")
        }
        var noImages = try tiny.config(yaml("super-resolution", run: "none", maxSteps: 1))
        noImages.data.images = nil
        XCTAssertTrue(noImages.validationErrors().contains { $0.contains("data.images is required") })
    }

    func testSampleAndEvaluateRequestsOnTrainedModels() throws {
        _ = try train(yaml("super-resolution", run: "sr", maxSteps: 2))
        _ = try train(yaml("inpainting", run: "inpaint", maxSteps: 2))
        let inputs = tiny.root.appendingPathComponent("lowres")
        try FileManager.default.createDirectory(at: inputs, withIntermediateDirectories: true)
        let dataset = try ImageFolder(root: tiny.root.appendingPathComponent("test"), channels: 1, resolution: 16, fit: .pad)
        for i in 0..<3 { try PNG.write(SpatialInputs.lowResolution(try dataset.image(at: i), factor: 2), to: inputs.appendingPathComponent("in\(i).png")) }
        var request = SampleRequest(model: tiny.run("sr").path, autoencoder: nil, perClass: 1, steps: 3, eta: 0, guidance: 1,
                                    sampler: "ddim", seed: 0, weights: "ema", output: tiny.root.appendingPathComponent("sr-out"))
        request.lowres = inputs.path
        try request.run(communicator: SingleProcessCommunicator())
        let upsampled = try PNG.read(tiny.root.appendingPathComponent("sr-out/in1_x2.png"))
        XCTAssertEqual([upsampled.width, upsampled.height], [16, 16])
        // A colour file for a grey model is refused, not converted.
        let colour = tiny.root.appendingPathComponent("colour")
        try FileManager.default.createDirectory(at: colour, withIntermediateDirectories: true)
        try PNG.write(Image8(width: 8, height: 8, channels: 3, pixels: [UInt8](repeating: 90, count: 192)), to: colour.appendingPathComponent("c.png"))
        request.lowres = colour.path
        XCTAssertThrowsError(try request.run(communicator: SingleProcessCommunicator())) {
            XCTAssertTrue("\($0)".contains("c.png is a colour image (3 channel(s)); the model takes grey images"), "\($0)")
        }
        // A full-resolution image is not a low-resolution input.
        request.lowres = tiny.root.appendingPathComponent("test").appendingPathComponent(dataset.files[0]).path
        XCTAssertThrowsError(try request.run(communicator: SingleProcessCommunicator())) {
            XCTAssertTrue("\($0)".contains("is 16×16; the model upsamples 8×8 images ×2"), "\($0)")
        }

        let maskURL = tiny.root.appendingPathComponent("mask.png"), smallMask = tiny.root.appendingPathComponent("small.png")
        var maskPixels = [UInt8](repeating: 0, count: 256)
        for y in 4..<10 { for x in 3..<12 { maskPixels[y * 16 + x] = 255 } }
        try PNG.write(Image8(width: 16, height: 16, channels: 1, pixels: maskPixels), to: maskURL)
        try PNG.write(Image8(width: 8, height: 8, channels: 1, pixels: [UInt8](repeating: 255, count: 64)), to: smallMask)
        var fill = SampleRequest(model: tiny.run("inpaint").path, autoencoder: nil, perClass: 2, steps: 3, eta: 0, guidance: 1,
                                 sampler: "ddim", seed: 0, weights: "ema", output: tiny.root.appendingPathComponent("fill-out"))
        fill.image = tiny.root.appendingPathComponent("test").appendingPathComponent(dataset.files[0]).path
        fill.mask = maskURL.path
        try fill.run(communicator: SingleProcessCommunicator())
        let original = try dataset.image(at: 0), filled = try PNG.read(tiny.root.appendingPathComponent("fill-out/inpainted_01.png"))
        for p in 0..<256 where maskPixels[p] == 0 {
            XCTAssertLessThanOrEqual(abs(Int(filled.pixels[p]) - Int(original.pixels[p])), 1, "pixel \(p) outside the mask is kept")
        }
        fill.mask = smallMask.path
        XCTAssertThrowsError(try fill.run(communicator: SingleProcessCommunicator())) {
            XCTAssertTrue("\($0)".contains("the mask must have the image's size"), "\($0)")
        }
        fill.lowres = inputs.path
        XCTAssertThrowsError(try fill.run(communicator: SingleProcessCommunicator())) {
            XCTAssertTrue("\($0)".contains("--lowres given, but") && "\($0)".contains("it inpaints"), "\($0)")
        }

        let dataConfig = try tiny.configFile("data.yaml", "data: \(images)\n")
        for (run, metric, baseline) in [("sr", "psnr", "psnr_bicubic"), ("inpaint", "l1_mask", "l1_mask_mean_fill")] {
            var evaluation = SpatialEvaluationRequest(model: tiny.run(run).path, dataConfig: dataConfig.path,
                                                      output: tiny.run(run).appendingPathComponent("evaluation.json"))
            evaluation.count = 5
            evaluation.steps = 3
            evaluation.batchSize = 2
            evaluation.lpipsWeights = tiny.root.appendingPathComponent("absent.safetensors").path
            let report = try evaluation.run(communicator: SingleProcessCommunicator())
            XCTAssertEqual(report.count, 5)
            for name in [metric, baseline] {
                let value = try XCTUnwrap(report.metrics[name]?.mean, "\(run) \(name)")
                XCTAssertTrue(value.isFinite, "\(run) \(name) \(value)")
                XCTAssertEqual(report.metrics[name]?.count, 5)
            }
        }
    }
}
