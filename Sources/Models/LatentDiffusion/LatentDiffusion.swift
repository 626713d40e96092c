import Checkpoint
import Diffusion
import Foundation
import NN
import Tensor

/// Holds the UNet under the reference's `model.diffusion_model` prefix.
public final class DiffusionWrapper: Module {
    public let diffusionModel: UNetModel
    init(_ unet: UNetModel) { diffusionModel = unet }
}

/// The latent diffusion model: the UNet ε_θ (`model.diffusion_model.…`) and the conditioner
/// τ_θ (`cond_stage_model.…`), trained jointly, with the schedule and scale factor they go with.
public final class LatentDiffusion: Module {
    public private(set) var config: LatentDiffusionConfig
    public let model: DiffusionWrapper
    public let condStageModel: (any Conditioner)?
    public let schedule: NoiseSchedule

    /// `vocabulary` is the WordPiece vocabulary of a text-conditional model (its size must
    /// be conditioning.text.vocab_size; `LatentDiffusion.vocabulary(for:)` checks it).
    public init(_ config: LatentDiffusionConfig, generator: inout RandomGenerator, vocabulary: WordPieceVocabulary? = nil) {
        let problems = config.validationErrors()
        precondition(problems.isEmpty, "invalid latent diffusion config:\n  " + problems.joined(separator: "\n  "))
        self.config = config
        model = DiffusionWrapper(UNetModel(config.effectiveUNet, generator: &generator))
        switch config.conditioning.key {
        // τ = identity for a concatenated input: it is joined to z_t as given.
        case .none, .concat: condStageModel = nil
        case .crossattn where config.conditioning.isTextConditional, .hybrid where config.conditioning.isTextConditional:
            let text = config.conditioning.textEncoder
            guard let vocabulary else { preconditionFailure("a text-conditional model needs its WordPiece vocabulary") }
            precondition(vocabulary.count == text.vocabSize,
                         "the vocabulary has \(vocabulary.count) tokens, conditioning.text.vocab_size is \(text.vocabSize)")
            condStageModel = TextConditioner(tokenizer: WordPieceTokenizer(vocabulary: vocabulary), contextLength: text.maxSeqLen,
                                             dim: config.unet.contextDim!, depth: text.nLayer, heads: text.heads,
                                             headChannels: text.dimHead, generator: &generator)
        case .crossattn, .hybrid:
            condStageModel = ClassEmbedder(classes: config.conditioning.numClasses!, embedDim: config.unet.contextDim!,
                                           generator: &generator)
        case .adm: condStageModel = LabelConditioner(classes: config.conditioning.numClasses!)
        }
        schedule = NoiseSchedule(config.schedule)
    }

    /// Reads a text model's vocabulary from `path` and checks its size against the config.
    public static func vocabulary(for config: LatentDiffusionConfig, path: String? = nil) throws -> WordPieceVocabulary? {
        guard config.conditioning.isTextConditional else { return nil }
        let text = config.conditioning.textEncoder
        let file = path ?? text.vocab
        let vocabulary = try WordPieceVocabulary(contentsOf: URL(fileURLWithPath: file))
        guard vocabulary.count == text.vocabSize else {
            throw TokenizerError.malformedVocabulary(path: file, line: nil, reason: "\(vocabulary.count) tokens, but "
                + "model.conditioning.text.vocab_size is \(text.vocabSize)")
        }
        return vocabulary
    }

    public var unet: UNetModel { model.diffusionModel }
    public var textConditioner: TextConditioner? { condStageModel as? TextConditioner }
    public var scaleFactor: Float { config.scaleFactor }

    /// Records the scale factor computed from the data (scale_by_std).
    public func setScaleFactor(_ value: Float) {
        precondition(value > 0 && value.isFinite, "scale factor must be positive and finite, got \(value)")
        config.scaleFactor = value
    }

    /// The conditioning of a batch (nil conditioner: unconditional), with its spatial input
    /// when the model concatenates one.
    public func conditioning(_ batch: ConditionBatch, dropped: [Bool]) throws -> UNetConditioning {
        var c = try condStageModel?.condition(batch, dropped: dropped) ?? .none
        if config.conditioning.usesConcat { c.concat = try spatialInput(batch) }
        return c
    }

    /// The guidance branch: the null class or caption, with the same spatial input (a
    /// concatenated image is never dropped).
    public func unconditional(_ batch: ConditionBatch) throws -> UNetConditioning {
        var c = condStageModel?.unconditional(count: batch.count) ?? .none
        if config.conditioning.usesConcat { c.concat = try spatialInput(batch) }
        return c
    }

    func spatialInput(_ batch: ConditionBatch) throws -> Tensor {
        guard let spatial = batch.spatial else { throw ConditionerError.missingSpatial }
        let expected = config.unet.inChannels - config.unet.outChannels
        guard spatial.rank == 4, spatial.shape[0] == batch.count, spatial.shape[1] == expected else {
            throw ConditionerError.spatialShape(spatial.shape, count: batch.count, channels: expected)
        }
        return spatial
    }

    /// The network output (ε or v) for z_t at integer steps t.
    /// A `concat` condition joins z_t on the channels (unet.in_channels counts both).
    public func apply(_ x: Tensor, timesteps t: [Int], conditioning c: UNetConditioning) -> Tensor {
        var input = x
        if let concat = c.concat {
            precondition(concat.rank == 4 && concat.shape[0] == x.shape[0] && concat.shape[2] == x.shape[2] && concat.shape[3] == x.shape[3],
                         "concat condition \(concat.shape) is not aligned with z_t \(x.shape)")
            input = Tensor.concatenate([x, concat], alongAxis: 1)
        }
        return unet(input, timesteps: t.map(Double.init), context: c.context, y: c.classLabels)
    }

    /// The training loss on scaled latents z_0 with the given draws of t, ε and condition
    /// dropout: MSE(f_θ(z_t, t, τ(y)), target).
    public func loss(start: Tensor, conditions: ConditionBatch, draws: TrainingDraws) throws -> Tensor {
        let zt = schedule.qSample(start, timesteps: draws.timesteps, noise: draws.noise)
        let c = try conditioning(conditions, dropped: draws.dropCondition)
        let output = apply(zt, timesteps: draws.timesteps, conditioning: c)
        return diffusionLoss(prediction: output,
                             target: schedule.target(config.parameterization, start: start, noise: draws.noise, timesteps: draws.timesteps))
    }

    /// The denoiser a sampler runs for `conditions`, guided with `guidanceScale` (1: plain
    /// conditional; unconditional models ignore it).
    public func denoiser(conditions: ConditionBatch, guidanceScale: Float) throws -> DenoiserOutput {
        let cond = try conditioning(conditions, dropped: [])
        let conditional: DenoiserOutput = { [unowned self] x, t in self.apply(x, timesteps: t, conditioning: cond) }
        guard condStageModel != nil, guidanceScale != 1 else { return conditional }
        let both = UNetConditioning.concatenated(try unconditional(conditions), cond)
        return ClassifierFreeGuidance.guided(scale: guidanceScale, conditional: conditional) { [unowned self] x, t in
            self.apply(x, timesteps: t, conditioning: both)
        }
    }

    // MARK: - Files

    public static let configMetadataKey = "ldm.latent_diffusion_config"
    /// A text model's WordPiece vocabulary, one token per line, so the file is self-contained.
    public static let vocabularyMetadataKey = "ldm.wordpiece_vocabulary"

    /// Writes weights (reference keys) with the config, scale factor and `metadata` (e.g.
    /// the first stage's fingerprint), atomically.
    public func save(to url: URL, metadata: [String: String] = [:]) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = String(decoding: try encoder.encode(config), as: UTF8.self)
        var own = [Self.configMetadataKey: json, "ldm.scale_factor": String(config.scaleFactor)]
        if let text = textConditioner { own[Self.vocabularyMetadataKey] = text.tokenizer.vocabulary.joined }
        try SafeTensors.write(stateDict(), metadata: metadata.merging(own) { $1 }, to: url)
    }

    /// Rebuilds a model from a file written by `save` (strict: every key, every shape).
    public static func load(from url: URL) throws -> (LatentDiffusion, metadata: [String: String]) {
        let file = try SafeTensors.read(url)
        guard let json = file.metadata[configMetadataKey] else {
            throw CheckpointLoadError(path: url.path, "no \(configMetadataKey) metadata: not a latent diffusion model written by ldm")
        }
        let config: LatentDiffusionConfig
        do { config = try JSONDecoder().decode(LatentDiffusionConfig.self, from: Data(json.utf8)) } catch {
            throw CheckpointLoadError(path: url.path, "\(configMetadataKey) is not a valid config: \(error)")
        }
        let problems = config.validationErrors()
        guard problems.isEmpty else {
            throw CheckpointLoadError(path: url.path, "invalid config: " + problems.joined(separator: "; "))
        }
        var vocabulary: WordPieceVocabulary?
        if config.conditioning.isTextConditional {
            guard let text = file.metadata[vocabularyMetadataKey] else {
                throw CheckpointLoadError(path: url.path, "a text-conditional model without its \(vocabularyMetadataKey) metadata")
            }
            do { vocabulary = try WordPieceVocabulary(joined: text, source: "\(url.path) metadata") } catch {
                throw CheckpointLoadError(path: url.path, "\(error)")
            }
            guard vocabulary!.count == config.conditioning.textEncoder.vocabSize else {
                throw CheckpointLoadError(path: url.path, "its vocabulary has \(vocabulary!.count) tokens, its config says "
                    + "\(config.conditioning.textEncoder.vocabSize)")
            }
        }
        var generator = RandomGenerator(seed: 0)
        let model = LatentDiffusion(config, generator: &generator, vocabulary: vocabulary)
        do { try model.load(stateDict: try file.allTensors(), strict: true) } catch {
            throw CheckpointLoadError(path: url.path, "\(error)")
        }
        return (model, file.metadata)
    }
}
