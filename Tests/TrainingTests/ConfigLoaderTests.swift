import Foundation
import XCTest
@testable import Training
import Models
import Tensor

final class ConfigLoaderTests: XCTestCase {
    func testShippedConfigsParseAndValidate() throws {
        let configs = ShippedConfigs.directory
        let names = try ShippedConfigs.names(.autoencoder)
        XCTAssertGreaterThanOrEqual(names.count, 3, "\(names)")
        for name in names {
            let config = try ConfigLoader.load(AutoencoderTrainingConfig.self, from: configs.appendingPathComponent(name))
            XCTAssertEqual(config.validationErrors(), [], name)
            XCTAssertEqual(config.model.autoencoder.downsamplingFactor, 4, name)
        }
        // The pipeline's second phase starts from the first phase's checkpoint: same
        // architecture, and a checkpoint the first phase keeps.
        let first = try ConfigLoader.load(AutoencoderTrainingConfig.self,
                                          from: configs.appendingPathComponent("autoencoder_kl_f4_fashion_mnist.yaml"))
        let second = try ConfigLoader.load(AutoencoderTrainingConfig.self,
                                           from: configs.appendingPathComponent("autoencoder_kl_f4_fashion_mnist_finetune.yaml"))
        XCTAssertEqual(second.model.autoencoder, first.model.autoencoder)
        XCTAssertEqual(second.model.ckptPath,
                       first.trainer.runDirectory + "/checkpoints/step-" + String(format: "%08d", first.trainer.maxSteps))
        XCTAssertEqual(first.trainer.maxSteps % first.trainer.keepEvery, 0)
        XCTAssertGreaterThan(second.model.loss.discStart, second.trainer.maxSteps, "no PatchGAN in the fine-tune")
    }

    func testShippedClassifierConfigsParseAndValidateAndEveryConfigIsCovered() throws {
        let configs = ShippedConfigs.directory
        // Each shipped config is validated by one of this file's tests, by its prefix.
        XCTAssertEqual(try ShippedConfigs.all().filter { ShippedConfigs.kind(of: $0) == nil }, [])
        for name in try ShippedConfigs.names(.classifier) {
            let config = try ConfigLoader.load(ClassifierTrainingConfig.self, from: configs.appendingPathComponent(name))
            XCTAssertEqual(config.validationErrors(), [], name)
        }
    }

    func testShippedLDMConfigsParseAndValidateAndFitTheirCache() throws {
        let configs = ShippedConfigs.directory
        let names = try ShippedConfigs.names(.ldm)
        XCTAssertGreaterThanOrEqual(names.count, 2, "\(names)")
        // Each LDM config's data.cache is the latents directory of a shipped first stage's run.
        var firstStages: [String: AutoencoderTrainingConfig] = [:]
        for name in try ShippedConfigs.names(.autoencoder) {
            let config = try ConfigLoader.load(AutoencoderTrainingConfig.self, from: configs.appendingPathComponent(name))
            firstStages[config.trainer.runDirectory + "/latents"] = config
        }
        for name in names {
            let config = try ConfigLoader.load(LDMTrainingConfig.self, from: configs.appendingPathComponent(name))
            XCTAssertEqual(config.validationErrors(), [], name)
            guard let firstStage = firstStages[config.data.cache] else {
                XCTFail("\(name): data.cache \(config.data.cache) is no shipped first stage's run_dir/latents")
                continue
            }
            let latent = firstStage.model.autoencoder.latentResolution
            // The latent channels, plus a concatenated condition's (its images' channels for
            // super-resolution, the masked latent and the mask for inpainting).
            let latentChannels = firstStage.model.autoencoder.embedDim
            let conditionChannels = config.model.conditioning.usesConcat
                ? config.model.conditioning.spatial!.channels(latentChannels: latentChannels, imageChannels: config.data.images!.channels) : 0
            XCTAssertEqual(config.model.unet.inChannels, latentChannels + conditionChannels, name)
            XCTAssertEqual(config.model.unet.outChannels, latentChannels, name)
            XCTAssertEqual(latent % config.model.diffusion.effectiveUNet.downsamplingFactor, 0, name)
            var g = RandomGenerator(seed: 0)
            // A text model is built with a vocabulary of its size (the real one is setup's download).
            let text = config.model.conditioning.textEncoder
            let vocabulary = config.model.conditioning.isTextConditional
                ? try WordPieceVocabulary(tokens: ["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + (4..<text.vocabSize).map { "w\($0)" }) : nil
            XCTAssertNoThrow(LatentDiffusion(config.model.diffusion, generator: &g, vocabulary: vocabulary), name)
        }
    }

    /// Found by FuzzConfig: a list or mapping used as a key trapped inside Yams' loader.
    func testNonScalarKeysAreRefusedNotTrapped() {
        for yaml in ["? [a, b]\n: 1\n", "model:\n  {x: 1}: 2\n", "data: [{? [c]: d}]\n"] {
            XCTAssertThrowsError(try ConfigLoader.parse(AutoencoderTrainingConfig.self, yaml: yaml, file: "bad.yaml"), yaml) {
                XCTAssertTrue("\($0)".contains("bad.yaml") && "\($0)".contains("a key must be a plain name"), "\($0)")
            }
        }
    }

    /// Found by FuzzConfig after the fix above: the data-section reader (`--data-config`) read
    /// the YAML on its own and still trapped on such a key.
    func testNonScalarKeysAreRefusedByTheDataSectionReader() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("nonscalar-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for (i, yaml) in ["? [a, b]\n: 1\n", "data:\n  {x: 1}: 2\n", "model:\n  ? [c]\n  : d\ndata: {batch_size: 4}\n"].enumerated() {
            let url = dir.appendingPathComponent("bad\(i).yaml")
            try yaml.write(to: url, atomically: true, encoding: .utf8)
            XCTAssertThrowsError(try DataConfig.load(fromConfigFile: url), yaml) {
                XCTAssertTrue("\($0)".contains(url.path) && "\($0)".contains("a key must be a plain name"), "\($0)")
            }
        }
    }

    func testDefaultsFillMissingKeys() throws {
        let config = try ConfigLoader.parse(AutoencoderTrainingConfig.self, yaml: "model:\n  autoencoder:\n    ch: 64\n")
        XCTAssertEqual(config.model.autoencoder.ch, 64)
        XCTAssertEqual(config.model.autoencoder.chMult, [1, 2, 4])
        XCTAssertEqual(config.model.loss.klWeight, 1e-6)
        XCTAssertEqual(config.data.dataset, .fashionMNIST)
        XCTAssertEqual(config.trainer.accumulateGradBatches, 1)
    }

    func testUnknownKeyIsNamed() {
        XCTAssertThrowsError(try ConfigLoader.parse(AutoencoderTrainingConfig.self,
                                                    yaml: "model:\n  autoencoder:\n    ch_mlt: [1, 2]\n", file: "x.yaml")) { error in
            XCTAssertTrue("\(error)".contains("model.autoencoder.ch_mlt"), "\(error)")
            XCTAssertTrue("\(error)".contains("x.yaml"), "\(error)")
        }
    }

    func testTypeMismatchNamesTheKey() {
        XCTAssertThrowsError(try ConfigLoader.parse(AutoencoderTrainingConfig.self, yaml: "trainer:\n  max_steps: many\n")) { error in
            XCTAssertTrue("\(error)".contains("trainer.max_steps"), "\(error)")
        }
        XCTAssertThrowsError(try ConfigLoader.parse(AutoencoderTrainingConfig.self, yaml: "- just\n- a list\n")) { error in
            XCTAssertTrue("\(error)".contains("mapping"), "\(error)")
        }
        XCTAssertThrowsError(try ConfigLoader.parse(AutoencoderTrainingConfig.self, yaml: "model: {autoencoder: [unclosed\n")) { error in
            XCTAssertTrue("\(error)".contains("YAML"), "\(error)")
        }
    }

    func testInconsistentConfigsAreRefusedWithReasons() throws {
        var config = AutoencoderTrainingConfig()
        config.model.autoencoder.resolution = 36
        config.data.resolution = 36
        config.model.autoencoder.chMult = [1, 2, 4, 4]  // f = 8 does not divide 36
        XCTAssertTrue(config.validationErrors().contains { $0.contains("not divisible by the downsampling factor f = 8") },
                      "\(config.validationErrors())")
        config = AutoencoderTrainingConfig()
        config.data.channels = 3
        XCTAssertTrue(config.validationErrors().contains { $0.contains("data.channels 3 differs from model.autoencoder.in_channels 1") })
        config = AutoencoderTrainingConfig()
        config.model.autoencoder.ch = 48
        XCTAssertTrue(config.validationErrors().contains { $0.contains("multiple of 32") })
    }

    func testFashionMNISTWithThreeChannelsIsAClearError() throws {
        var data = DataConfig()
        data.channels = 3
        XCTAssertThrowsError(try data.trainingSet()) { XCTAssertTrue("\($0)".contains("data.channels must be 1"), "\($0)") }
    }
}
