import Checkpoint
import Foundation
import NN
import Tensor

/// A first stage of either kind, with what training, encoding and decoding need of it.
public enum FirstStageModel {
    case kl(AutoencoderKL)
    case vq(VQModel)

    public init(_ config: AutoencoderConfig, generator: inout RandomGenerator) {
        switch config.regularizer {
        case .kl: self = .kl(AutoencoderKL(config, generator: &generator))
        case .vq: self = .vq(VQModel(config, generator: &generator))
        }
    }

    public var module: Module {
        switch self {
        case .kl(let m): return m
        case .vq(let m): return m
        }
    }

    public var config: AutoencoderConfig {
        switch self {
        case .kl(let m): return m.config
        case .vq(let m): return m.config
        }
    }

    public var lastLayerWeight: Tensor {
        switch self {
        case .kl(let m): return m.lastLayerWeight
        case .vq(let m): return m.lastLayerWeight
        }
    }

    /// A training forward pass: reconstruction, the regulariser's term, and (VQ) the
    /// codebook perplexity.
    public struct Forward {
        public let reconstruction: Tensor
        public let regularization: Regularization
        public let perplexity: Float?
    }

    /// `noiseSlice`: under data parallelism, (rank, ranks) with `generator` the same on every
    /// rank, so the posterior noise of each sample does not depend on the number of ranks.
    public func forward(_ x: Tensor, generator: inout RandomGenerator,
                        noiseSlice: (index: Int, count: Int) = (0, 1)) -> Forward {
        switch self {
        case .kl(let m):
            let (reconstruction, posterior) = m(x, samplePosterior: true, generator: &generator, noiseSlice: noiseSlice)
            return Forward(reconstruction: reconstruction, regularization: .kl(posterior), perplexity: nil)
        case .vq(let m):
            let (image, q) = m.decode(m.encode(x))
            return Forward(reconstruction: image, regularization: .codebook(q.loss), perplexity: q.perplexity)
        }
    }

    /// Images from latents: KL decodes z as is; VQ quantises the pre-quantisation latent first
    /// (as the LDM does, which diffuses in the continuous space).
    public func decode(_ z: Tensor) -> Tensor {
        switch self {
        case .kl(let m): return m.decode(z)
        case .vq(let m): return m.decode(z).image
        }
    }

    /// The latent of `x` as the cache stores it for sampling: KL's posterior mean, VQ's
    /// pre-quantisation latent.
    public func encodeMode(_ x: Tensor) -> Tensor {
        switch self {
        case .kl(let m): return m.encode(x).mean
        case .vq(let m): return m.encode(x)
        }
    }

    /// Deterministic reconstruction (KL: posterior mode).
    public func reconstruct(_ x: Tensor) -> Tensor {
        switch self {
        case .kl(let m): return m.reconstruct(x)
        case .vq(let m): return m.reconstruct(x)
        }
    }

    /// Metadata key holding the architecture as JSON.
    public static let configMetadataKey = "ldm.autoencoder_config"

    /// Writes the weights as safetensors with the architecture and step in the metadata, plus
    /// `extraMetadata` (e.g. where an imported model came from).
    public static func save(_ model: FirstStageModel, config: AutoencoderConfig, step: Int, to url: URL,
                            extraMetadata: [String: String] = [:]) throws {
        // Sorted keys: the same model gives the same bytes (checkpoint hashes compare runs).
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = String(decoding: try encoder.encode(config), as: UTF8.self)
        let metadata = extraMetadata.merging([configMetadataKey: json, "ldm.step": String(step),
                                              "format": "ldm-swift first stage"]) { _, ours in ours }
        try SafeTensors.write(model.module.stateDict(), metadata: metadata, to: url)
    }

    /// Loads a model written by `save`: the architecture comes from the file.
    public static func load(from url: URL) throws -> FirstStageModel {
        let file = try SafeTensors.read(url)
        guard let json = file.metadata[configMetadataKey] else {
            throw CheckpointLoadError(path: url.path, "no \(configMetadataKey) metadata: not an autoencoder written by this trainer "
                + "(a diffusers VAE is imported with `ldm import-vae`)")
        }
        let config: AutoencoderConfig
        do {
            config = try JSONDecoder().decode(AutoencoderConfig.self, from: Data(json.utf8))
        } catch {
            throw CheckpointLoadError(path: url.path, "unreadable autoencoder config in metadata: \(error)")
        }
        var generator = RandomGenerator(seed: 0)
        let model = FirstStageModel(config, generator: &generator)
        do {
            _ = try model.module.load(stateDict: file.allTensors(), strict: true)
        } catch {
            throw CheckpointLoadError(path: url.path, "\(error)")
        }
        return model
    }
}

/// A weights file that does not fit what it is loaded into, naming the file.
public struct CheckpointLoadError: Error, CustomStringConvertible {
    public let path: String
    public let message: String
    public init(path: String, _ message: String) {
        self.path = path
        self.message = message
    }
    public var description: String { "\(path): \(message)" }
}
