import Checkpoint
import Data
import Distributed
import Foundation
import LatentCache
import Models
import Tensor
import TestSupport
import XCTest
@testable import Training

/// Text-conditional training on the tiny cache (captions from class templates), sampling with
/// prompts, and the mismatches between a model and the flags it is sampled with.
final class TextConditioningTests: XCTestCase {
    var tiny: TinyLatentCache!
    var vocab: URL!
    static let words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "an", "photo", "of", "image", "grey", "product", "low",
                        "resolution", "picture", "photograph", "showing", "small", "big", "blob"]

    override func setUpWithError() throws {
        tiny = try TinyLatentCache()
        vocab = tiny.root.appendingPathComponent("vocab.txt")
        try Data((Self.words.joined(separator: "\n") + "\n").utf8).write(to: vocab)
    }
    override func tearDown() { tiny?.remove() }

    func yaml(run: String, maxSteps: Int, captions: String = "{source: class-templates, class_names: [small blob, big blob]}",
              sampling: String = "{every: 0, steps: 3, per_class: 2}", vocabSize: Int? = nil) -> String {
        """
        model:
          base_learning_rate: 1.0e-4
          conditioning: {key: crossattn, encoder: text, ucg_rate: 0.25,
                         text: {vocab: \(vocab.path), vocab_size: \(vocabSize ?? Self.words.count), max_seq_len: 10, n_layer: 1, heads: 2, dim_head: 8}}
          schedule: {timesteps: 100}
          unet: {in_channels: 3, out_channels: 3, model_channels: 32, channel_mult: [1, 2], num_res_blocks: 1,
                 attention_resolutions: [2], num_head_channels: 16, use_spatial_transformer: true, legacy: false, context_dim: 16}
        data: {cache: \(tiny.cache.path), batch_size: 2, captions: \(captions)}
        trainer: {max_steps: \(maxSteps), log_every: 2, checkpoint_every: 1000, run_dir: \(tiny.run(run).path), seed: 5}
        sampling: \(sampling)
        evaluation: {every: 0, samples: 6}

        """
    }

    func train(_ text: String) throws -> LDMTrainer {
        let trainer = try LDMTrainer.start(config: try tiny.config(text), communicator: SingleProcessCommunicator(), resume: nil)
        try trainer.train()
        return trainer
    }

    func sampleRequest(_ run: String, out: String) -> SampleRequest {
        SampleRequest(model: tiny.run(run).path, autoencoder: nil, perClass: 2, steps: 3, eta: 0, guidance: 2, sampler: "ddim",
                      seed: 1, weights: "ema", output: tiny.root.appendingPathComponent(out))
    }

    func testTrainsFromClassTemplatesAndSamplesWithPrompts() throws {
        let trainer = try train(yaml(run: "text", maxSteps: 3, sampling: "{every: 3, steps: 3, per_class: 2}"))
        XCTAssertEqual(trainer.step, 3)
        XCTAssertNotNil(trainer.model.textConditioner)
        // The training grid: a row per class in a held-out phrasing, 2 per row.
        let grid = try PNG.read(tiny.run("text").appendingPathComponent("images/samples_step000003.png"))
        let scale = (grid.width - 6) / (2 * 16)
        XCTAssertEqual(grid.height, 2 * 16 * scale + 3 * 2)
        let (model, _) = try LatentDiffusion.load(from: tiny.run("text").appendingPathComponent("ldm.safetensors"))
        XCTAssertEqual(model.textConditioner?.tokenizer.vocabulary.tokens, Self.words)
        // τθ is trained jointly with the UNet: its weights moved from their initial values.
        var g = RandomGenerator(seed: 5)
        let initial = LatentDiffusion(trainer.config.model.diffusion, generator: &g, vocabulary: model.textConditioner!.tokenizer.vocabulary)
        let trained = try SafeTensors.read(tiny.run("text").appendingPathComponent("ldm_nonema.safetensors"))
        for key in ["cond_stage_model.transformer.token_emb.weight", "cond_stage_model.transformer.attn_layers.layers.0.1.to_q.weight",
                    "cond_stage_model.transformer.norm.weight"] {
            XCTAssertNotEqual(try trained.tensor(named: key).scalars, initial.stateDict()[key]!.scalars, key)
        }

        var request = sampleRequest("text", out: "prompted")
        request.prompts = ["a picture of a small blob", "a picture of a big blob"]
        try request.run(communicator: SingleProcessCommunicator())
        let file = try SafeTensors.read(tiny.root.appendingPathComponent("prompted/samples.safetensors"))
        let images = try file.tensor(named: "images")
        XCTAssertEqual(images.shape, [4, 1, 16, 16])
        XCTAssertTrue(images.scalars.allSatisfy(\.isFinite))
        XCTAssertEqual(file.metadata["ldm.prompts"], "[\"a picture of a small blob\",\"a picture of a big blob\"]")
        XCTAssertTrue(FileManager.default.fileExists(atPath: tiny.root.appendingPathComponent("prompted/sample_0003_prompt1.png").path))
        // Same seed, same sample indices: the two prompts' rows differ only through the text.
        var swapped = sampleRequest("text", out: "swapped")
        swapped.prompts = ["a picture of a big blob", "a picture of a small blob"]
        try swapped.run(communicator: SingleProcessCommunicator())
        let other = try SafeTensors.read(tiny.root.appendingPathComponent("swapped/samples.safetensors")).tensor(named: "images")
        XCTAssertNotEqual(images.slice(alongAxis: 0, 0..<2).scalars, other.slice(alongAxis: 0, 0..<2).scalars)
    }

    /// `ldm evaluate ldm` on a text model: every class prompted in a held-out phrasing, scored
    /// by the classifier as a class model's samples are; the held-out loss with the same prompts.
    func testEvaluationPromptsEachClassInAHeldOutPhrasing() throws {
        _ = try train(yaml(run: "eval", maxSteps: 2, captions: "{source: class-templates, class_names: [a, b]}"))
        let data = "{dataset: image-folder, path: \(tiny.root.appendingPathComponent("train").path), "
            + "validation_path: \(tiny.root.appendingPathComponent("test").path), channels: 1, resolution: 16, batch_size: 4}"
        let classifierConfig = try tiny.configFile("cls.yaml", """
        model:
          classifier: {resolution: 16, num_classes: 2, channels: [8, 16], convs_per_level: 1, norm_groups: 4, feature_dim: 4}
        data: \(data)
        trainer: {max_steps: 3, run_dir: \(tiny.run("cls").path)}

        """)
        let trained = try Launcher.ldm(["train-classifier", "--config", classifierConfig.path], timeout: 120)
        XCTAssertEqual(trained.status, 0, trained.all)
        var request = LDMEvaluationRequest(model: tiny.run("eval").path, dataConfig: try tiny.configFile("data.yaml", "data: \(data)\n").path,
                                           output: tiny.run("eval").appendingPathComponent("evaluation.json"))
        request.classifier = tiny.run("cls").appendingPathComponent("classifier.safetensors").path
        request.features = ["classifier"]
        request.perClass = 5
        request.steps = 3
        request.guidance = [2]
        let report = try request.run(communicator: SingleProcessCommunicator())
        let result = try XCTUnwrap(report.results.first)
        XCTAssertEqual(result.samples, 10)
        let accuracy = try XCTUnwrap(result.sampleAccuracy)
        XCTAssertTrue((0...1).contains(accuracy), "\(accuracy)")
        let fd = try XCTUnwrap(result.distances.first?.fd)
        XCTAssertTrue(fd.isFinite && fd >= 0, "\(fd)")
        let heldOut = try XCTUnwrap(report.heldOut)
        XCTAssertEqual(heldOut.count, 8)
        XCTAssertTrue(heldOut.mse.isFinite && heldOut.mse > 0)
    }

    func testTrainsOnCaptionsStoredInTheCache() throws {
        let captioned = try TinyLatentCache(captioned: true)
        defer { captioned.remove() }
        let batch = try LatentCacheReader(directory: captioned.cache, globalBatchSize: 4, seed: 1).nextBatch()
        XCTAssertEqual(batch.captions, batch.labels.map { $0 == 0 ? "a small blob" : "a big blob" })
        let text = yaml(run: "cached", maxSteps: 2, captions: "{source: cache}",
                        sampling: "{every: 2, steps: 2, per_class: 2, prompts: [a small blob, a big blob, a blob]}")
            .replacingOccurrences(of: tiny.cache.path, with: captioned.cache.path)
            .replacingOccurrences(of: tiny.run("cached").path, with: captioned.run("cached").path)
        let trainer = try LDMTrainer.start(config: try tiny.config(text), communicator: SingleProcessCommunicator(), resume: nil)
        try trainer.train()
        let grid = try PNG.read(captioned.run("cached").appendingPathComponent("images/samples_step000002.png"))
        let scale = (grid.width - 6) / (2 * 16)
        XCTAssertEqual(grid.height, 3 * 16 * scale + 4 * 2, "a row per prompt")
    }

    /// As a user runs it: `ldm train-ldm` on long class names (captions past the context: one
    /// warning per run), then `ldm sample --prompt … --prompt …` on one and on two ranks.
    func testCommandLineTrainsWarnsOnceAndSamplesPromptsOnAnyRankCount() throws {
        let long = "{source: class-templates, class_names: [small blob, big blob big blob big blob]}"
        let config = try tiny.configFile("cli.yaml", yaml(run: "cli", maxSteps: 3, captions: long))
        let trained = try Launcher.ldm(["train-ldm", "--config", config.path], timeout: 120)
        XCTAssertEqual(trained.status, 0, trained.all)
        XCTAssertEqual(trained.stderr.components(separatedBy: "warning: captions longer than the text context").count - 1, 1, trained.all)
        func sample(_ out: String, ranks: Int) throws -> Tensor {
            let outcome = try Launcher.ldm(["sample", "--ldm", tiny.run("cli").path, "--prompt", "a picture of a small blob",
                                            "--prompt", "a picture of a big blob", "--n", "3", "--steps", "3",
                                            "--out", tiny.run(out).path], ranks: ranks, timeout: 120)
            XCTAssertEqual(outcome.status, 0, outcome.all)
            XCTAssertTrue(outcome.stdout.contains("a row per prompt"), outcome.stdout)
            return try SafeTensors.read(tiny.run(out).appendingPathComponent("samples.safetensors")).tensor(named: "images")
        }
        let one = try sample("p1", ranks: 1), two = try sample("p2", ranks: 2)
        XCTAssertEqual(one.shape, [6, 1, 16, 16])
        assertClose(one, two, atol: 1e-4, rtol: 1e-4)
        let refused = try Launcher.ldm(["sample", "--ldm", tiny.run("cli").path, "--classes", "all", "--out", tiny.run("p3").path],
                                       timeout: 60)
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.all.contains("is text-conditional: use --prompt"), refused.all)
    }

    /// 4 steps ≡ 2 steps, stop, resume, 2 steps: the text encoder's weights too, bit for bit
    /// (the template phrasings depend on the step, so a resume that lost it would differ).
    func testResumeIsBitExact() throws {
        let run = { (name: String, steps: Int, resume: String?) throws -> URL in
            let text = self.yaml(run: name, maxSteps: steps).replacingOccurrences(of: "checkpoint_every: 1000", with: "checkpoint_every: 2")
            let trainer = try LDMTrainer.start(config: try self.tiny.config(text), communicator: SingleProcessCommunicator(), resume: resume)
            try trainer.train()
            return self.tiny.run(name).appendingPathComponent("ldm.safetensors")
        }
        let straight = try run("straight", 4, nil)
        _ = try run("split", 2, nil)
        let resumed = try run("split", 4, "latest")
        let a = try SafeTensors.read(straight).allTensors().mapValues(\.scalars)
        let b = try SafeTensors.read(resumed).allTensors().mapValues(\.scalars)
        XCTAssertTrue(a.keys.contains("cond_stage_model.transformer.token_emb.weight"))
        XCTAssertEqual(a.keys.sorted(), b.keys.sorted())
        for key in a.keys { XCTAssertEqual(a[key]!.map(\.bitPattern), b[key]!.map(\.bitPattern), key) }
    }

    func testCaptionsFromTemplatesAreSeededPerSampleAndStep() throws {
        var config = CaptionConfig()
        config.source = .classTemplates
        let source = CaptionSource(config: config, seed: 7, cache: "c")
        let batch = try LatentCacheReader(directory: tiny.cache, globalBatchSize: 8, seed: 1).nextBatch()
        let a = try source.captions(for: batch, step: 0), b = try source.captions(for: batch, step: 0)
        XCTAssertEqual(a, b)
        let later = (1...20).map { try! source.captions(for: batch, step: $0) }
        XCTAssertTrue(later.contains { $0 != a }, "the phrasing changes with the step")
        for (caption, label) in zip(a, batch.labels) {
            XCTAssertTrue(caption.hasSuffix(label == 0 ? "a t-shirt/top" : "a trouser"), caption)
        }
        XCTAssertEqual(CaptionSource.caption(template: CaptionSource.heldOutTemplates[0], className: "Ankle boot"),
                       "a picture of an ankle boot")
        let training = Set(CaptionSource.trainingTemplates)
        XCTAssertTrue(CaptionSource.heldOutTemplates.allSatisfy { !training.contains($0) })
    }

    // MARK: Bad input

    func testMismatchedFlagsAndDataAreRefusedByName() throws {
        _ = try train(yaml(run: "text", maxSteps: 1))
        var noPrompt = sampleRequest("text", out: "a")
        XCTAssertThrowsError(try noPrompt.run(communicator: SingleProcessCommunicator())) { error in
            XCTAssertTrue("\(error)".contains("is text-conditional: give one or more --prompt"), "\(error)")
        }
        noPrompt.classes = [1]
        noPrompt.prompts = ["a blob"]
        XCTAssertThrowsError(try noPrompt.run(communicator: SingleProcessCommunicator())) { error in
            XCTAssertTrue("\(error)".contains("--class/--classes given, but"), "\(error)")
        }
        noPrompt.classes = nil   // --classes all
        noPrompt.classesRequested = true
        XCTAssertThrowsError(try noPrompt.run(communicator: SingleProcessCommunicator())) { error in
            XCTAssertTrue("\(error)".contains("--class/--classes given, but"), "\(error)")
        }
        // --prompt to a class-conditional model.
        let classTrainer = try LDMTrainer.start(config: try tiny.config(tiny.yaml(run: "class", maxSteps: 1)),
                                                communicator: SingleProcessCommunicator(), resume: nil)
        try classTrainer.train()
        var prompted = sampleRequest("class", out: "b")
        prompted.prompts = ["a big blob"]
        XCTAssertThrowsError(try prompted.run(communicator: SingleProcessCommunicator())) { error in
            XCTAssertTrue("\(error)".contains("is class-conditional: choose classes with --class/--classes"), "\(error)")
        }
        // A cache without captions, a vocabulary of another size, a missing vocabulary.
        XCTAssertThrowsError(try train(yaml(run: "c", maxSteps: 1, captions: "{source: cache}",
                                            sampling: "{every: 0, steps: 3, per_class: 2, prompts: [a blob]}"))) { error in
            XCTAssertTrue("\(error)".contains("the cache stores no captions"), "\(error)")
        }
        XCTAssertThrowsError(try train(yaml(run: "d", maxSteps: 1, vocabSize: 30522))) { error in
            XCTAssertTrue("\(error)".contains("vocab_size is 30522") && "\(error)".contains(self.vocab.path), "\(error)")
        }
        try FileManager.default.removeItem(at: vocab)
        XCTAssertThrowsError(try train(yaml(run: "e", maxSteps: 1))) { error in
            XCTAssertTrue("\(error)".contains("Launch/fetch_bert_vocab.sh") && "\(error)".contains(self.vocab.path), "\(error)")
        }
        let unprompted = try tiny.config(yaml(run: "f", maxSteps: 1, captions: "{source: cache}")).validationErrors()
        XCTAssertTrue(unprompted.joined().contains("sampling.prompts is required"), "\(unprompted)")
    }
}
