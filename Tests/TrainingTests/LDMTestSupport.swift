import Data
import Distributed
import Foundation
import LatentCache
import Models
import Tensor
@testable import Training

/// A tiny latent cache for LDM tests: a random-weight KL autoencoder (f = 2, 3 latent
/// channels) encodes 16×16 grey blobs in two class folders (labels 0 and 1) into 3×8×8
/// latents; train and test splits.
final class TinyLatentCache {
    let root: URL
    let cache: URL
    let autoencoderURL: URL

    /// `captioned`: a .txt beside each image ("a small blob" / "a big blob"), stored in the cache.
    init(trainCount: Int = 24, testCount: Int = 8, labelled: Bool = true,
         regularizer: AutoencoderConfig.Regularizer = .kl, captioned: Bool = false) throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("ldm-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        var c = AutoencoderConfig()
        c.regularizer = regularizer
        c.nEmbed = 16
        c.resolution = 16
        c.ch = 32
        c.chMult = [1, 2]
        c.numResBlocks = 1
        c.zChannels = 3
        c.embedDim = 3
        autoencoderURL = root.appendingPathComponent("autoencoder.safetensors")
        var g = RandomGenerator(seed: 3)
        try FirstStageModel.save(FirstStageModel(c, generator: &g), config: c, step: 0, to: autoencoderURL)
        let train = root.appendingPathComponent("train"), test = root.appendingPathComponent("test")
        try Self.writeImages(trainCount, seed: 1, labelled: labelled, captioned: captioned, to: train)
        try Self.writeImages(testCount, seed: 2, labelled: labelled, captioned: captioned, to: test)
        cache = root.appendingPathComponent("latents")
        var options = PrecomputeOptions()
        options.shardSize = 8
        options.batchSize = 4
        let splits = [
            CacheSplitSource(name: "train", dataset: try ImageFolder(root: train, channels: 1, resolution: 16, fit: .pad,
                                                                    captions: captioned ? CaptionOptions() : nil)),
            CacheSplitSource(name: "test", dataset: try ImageFolder(root: test, channels: 1, resolution: 16, fit: .pad,
                                                                   captions: captioned ? CaptionOptions() : nil)),
        ]
        _ = try LatentPrecomputer(autoencoder: autoencoderURL, splits: splits,
                                  preprocessing: .init(resolution: 16, fit: "pad", channels: 1), directory: cache,
                                  options: options, communicator: SingleProcessCommunicator()).run()
    }

    func remove() { try? FileManager.default.removeItem(at: root) }

    /// Blobs whose size depends on the class, in folders "a" and "b" (or one flat folder).
    static func writeImages(_ count: Int, seed: UInt64, labelled: Bool, captioned: Bool = false, to dir: URL) throws {
        var g = RandomGenerator(seed: seed)
        for i in 0..<count {
            let folder = labelled ? dir.appendingPathComponent(i % 2 == 0 ? "a" : "b") : dir
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let cx = 4 + g.nextUniform() * 8, cy = 4 + g.nextUniform() * 8, r: Float = i % 2 == 0 ? 3 : 6
            var pixels = [UInt8](repeating: 0, count: 256)
            for y in 0..<16 {
                for x in 0..<16 {
                    let d = ((Float(x) - cx) * (Float(x) - cx) + (Float(y) - cy) * (Float(y) - cy)).squareRoot()
                    pixels[y * 16 + x] = UInt8(max(0, min(255, 255 * (1 - d / r) + 20 * g.nextUniform())))
                }
            }
            try PNG.write(Image8(width: 16, height: 16, channels: 1, pixels: pixels),
                          to: folder.appendingPathComponent(String(format: "img%03d.png", i)))
            if captioned {
                try Data((i % 2 == 0 ? "a small blob\n" : "a big blob\n").utf8)
                    .write(to: folder.appendingPathComponent(String(format: "img%03d.txt", i)))
            }
        }
    }

    /// A small class-conditional LDM config on this cache.
    func yaml(run: String, maxSteps: Int, batch: Int = 2, checkpointEvery: Int = 1000, key: String = "crossattn",
              ucgRate: Double = 0.25, extraModel: String = "", unet: String? = nil, sampling: String = "{every: 0, steps: 4, per_class: 2}",
              evaluation: String = "{every: 0, samples: 6}", lr: String = "1.0e-4", trainerExtra: String = "") -> String {
        let conditioning = key == "none" ? "{key: none}" : "{key: \(key), num_classes: 2, ucg_rate: \(ucgRate)}"
        let context = key == "crossattn" ? ", context_dim: 16" : ""
        let unetText = unet ?? "{in_channels: 3, out_channels: 3, model_channels: 32, channel_mult: [1, 2], num_res_blocks: 1, "
            + "attention_resolutions: [2], num_head_channels: 16, use_spatial_transformer: \(key != "adm"), legacy: false\(context)}"
        return """
        model:
          base_learning_rate: \(lr)
          conditioning: \(conditioning)
          schedule: {timesteps: 100}
          unet: \(unetText)
        \(extraModel)
        data: {cache: \(cache.path), batch_size: \(batch)}
        trainer: {max_steps: \(maxSteps), log_every: 2, checkpoint_every: \(checkpointEvery), run_dir: \(root.appendingPathComponent(run).path), seed: 5\(trainerExtra)}
        sampling: \(sampling)
        evaluation: \(evaluation)

        """
    }

    func config(_ yaml: String) throws -> LDMTrainingConfig {
        try ConfigLoader.parse(LDMTrainingConfig.self, yaml: yaml)
    }

    func configFile(_ name: String, _ text: String) throws -> URL {
        let url = root.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    func run(_ name: String) -> URL { root.appendingPathComponent(name) }
}
