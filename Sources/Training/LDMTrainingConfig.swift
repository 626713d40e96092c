import Diffusion
import Foundation
import Models

/// A latent-diffusion training run: `model` (the LDM, optimiser and EMA), `data` (a latent
/// cache), `trainer` (the shared loop settings), `sampling` and `evaluation` (periodic grids
/// and held-out loss).
public struct LDMTrainingConfig: Codable, Equatable, Sendable {
    public struct EMAConfig: Codable, Equatable, Sendable {
        public var enabled = true
        public var decay: Double = 0.9999
        /// LitEma's warm-up, decay_n = min(decay, (1 + n)/(10 + n)).
        public var useNumUpdates = true

        public init() {}
        enum CodingKeys: String, CodingKey { case enabled, decay, useNumUpdates = "use_num_updates" }
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            enabled = try c.decodeIfPresent(Bool.self, forKey: .enabled) ?? true
            decay = try c.decodeIfPresent(Double.self, forKey: .decay) ?? 0.9999
            useNumUpdates = try c.decodeIfPresent(Bool.self, forKey: .useNumUpdates) ?? true
        }
    }

    public struct ModelSection: Codable, Equatable, Sendable {
        /// Scaled by ranks × batch × accumulation when trainer.scale_lr (the reference's rule).
        public var baseLearningRate: Float = 1e-6
        /// AdamW's decoupled weight decay (the reference's torch.optim.AdamW default, 0.01).
        public var weightDecay: Float = 0.01
        public var ema = EMAConfig()
        public var parameterization: Parameterization = .eps
        public var scaleByStd = true
        public var scaleFactor: Float = 1
        public var schedule = NoiseScheduleConfig()
        public var conditioning = ConditioningConfig()
        public var unet = UNetConfig()

        public init() {}

        enum CodingKeys: String, CodingKey {
            case ema, parameterization, schedule, conditioning, unet
            case baseLearningRate = "base_learning_rate", weightDecay = "weight_decay"
            case scaleByStd = "scale_by_std", scaleFactor = "scale_factor"
        }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let d = ModelSection()
            baseLearningRate = try c.decodeIfPresent(Float.self, forKey: .baseLearningRate) ?? d.baseLearningRate
            weightDecay = try c.decodeIfPresent(Float.self, forKey: .weightDecay) ?? d.weightDecay
            ema = try c.decodeIfPresent(EMAConfig.self, forKey: .ema) ?? d.ema
            parameterization = try c.decodeIfPresent(Parameterization.self, forKey: .parameterization) ?? d.parameterization
            scaleByStd = try c.decodeIfPresent(Bool.self, forKey: .scaleByStd) ?? d.scaleByStd
            scaleFactor = try c.decodeIfPresent(Float.self, forKey: .scaleFactor) ?? d.scaleFactor
            schedule = try c.decodeIfPresent(NoiseScheduleConfig.self, forKey: .schedule) ?? d.schedule
            conditioning = try c.decodeIfPresent(ConditioningConfig.self, forKey: .conditioning) ?? d.conditioning
            unet = try c.decodeIfPresent(UNetConfig.self, forKey: .unet) ?? d.unet
        }

        /// The model definition saved with the weights.
        public var diffusion: LatentDiffusionConfig {
            var c = LatentDiffusionConfig()
            c.unet = unet
            c.conditioning = conditioning
            c.schedule = schedule
            c.parameterization = parameterization
            c.scaleFactor = scaleFactor
            c.scaleByStd = scaleByStd
            return c
        }
    }

    public struct DataSection: Codable, Equatable, Sendable {
        /// The latent cache directory (`ldm precompute-latents --out`).
        public var cache: String = "Checkpoints/latents"
        public var trainSplit = "train"
        /// The held-out split for the evaluation loss ("" = none).
        public var testSplit = "test"
        /// Latents per rank per micro-batch.
        public var batchSize = 32
        /// Shards shuffled together (the streaming reader's window).
        public var shuffleWindow = 4
        /// The first stage that decodes sample grids; default: the one the cache records.
        public var autoencoder: String?
        /// Captions of a text-conditional model.
        public var captions = CaptionConfig()
        /// The images the cache was encoded from (a data section as the first stage's): a
        /// super-resolution or inpainting model's condition is made from them.
        public var images: DataConfig?

        public init() {}
        enum CodingKeys: String, CodingKey {
            case cache, autoencoder, captions, images
            case trainSplit = "train_split", testSplit = "test_split", batchSize = "batch_size", shuffleWindow = "shuffle_window"
        }
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let d = DataSection()
            cache = try c.decodeIfPresent(String.self, forKey: .cache) ?? d.cache
            trainSplit = try c.decodeIfPresent(String.self, forKey: .trainSplit) ?? d.trainSplit
            testSplit = try c.decodeIfPresent(String.self, forKey: .testSplit) ?? d.testSplit
            batchSize = try c.decodeIfPresent(Int.self, forKey: .batchSize) ?? d.batchSize
            shuffleWindow = try c.decodeIfPresent(Int.self, forKey: .shuffleWindow) ?? d.shuffleWindow
            autoencoder = try c.decodeIfPresent(String.self, forKey: .autoencoder)
            captions = try c.decodeIfPresent(CaptionConfig.self, forKey: .captions) ?? d.captions
            images = try c.decodeIfPresent(DataConfig.self, forKey: .images)
        }
    }

    /// Sample grids written while training (EMA weights), one row per class.
    public struct SamplingSection: Codable, Equatable, Sendable {
        /// Steps between grids (0 = only at the end).
        public var every = 1000
        public var sampler = "ddim"
        public var steps = 50
        public var eta: Double = 0
        public var guidance: Float = 3
        /// Samples per class (or in all, for an unconditional model: per_class × 8).
        public var perClass = 8
        public var seed: UInt64 = 0
        /// A text model's grid rows, one prompt each; default (class-templates captions): every
        /// class in a held-out phrasing.
        public var prompts: [String]?

        public init() {}
        enum CodingKeys: String, CodingKey { case every, sampler, steps, eta, guidance, seed, prompts, perClass = "per_class" }
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let d = SamplingSection()
            every = try c.decodeIfPresent(Int.self, forKey: .every) ?? d.every
            sampler = try c.decodeIfPresent(String.self, forKey: .sampler) ?? d.sampler
            steps = try c.decodeIfPresent(Int.self, forKey: .steps) ?? d.steps
            eta = try c.decodeIfPresent(Double.self, forKey: .eta) ?? d.eta
            guidance = try c.decodeIfPresent(Float.self, forKey: .guidance) ?? d.guidance
            perClass = try c.decodeIfPresent(Int.self, forKey: .perClass) ?? d.perClass
            seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? d.seed
            prompts = try c.decodeIfPresent([String].self, forKey: .prompts)
        }
    }

    /// The held-out ε-MSE (EMA weights, fixed t and ε per sample).
    public struct EvaluationSection: Codable, Equatable, Sendable {
        /// Steps between evaluations (0 = only at the end).
        public var every = 500
        /// Held-out latents evaluated (0 = the whole split).
        public var samples = 2000
        public var seed: UInt64 = 1234
        /// An evaluation classifier (`ldm train-classifier`): with it, every evaluation also
        /// samples `fd_samples` images (EMA weights, DDIM `fd_steps`, sampling.guidance) and
        /// logs their FD, precision/recall and class accuracy in its feature space, against
        /// the first stage's decodings of as many held-out latents. nil: off.
        public var classifier: String?
        public var fdSamples = 200
        public var fdSteps = 20

        enum CodingKeys: String, CodingKey {
            case every, samples, seed, classifier
            case fdSamples = "fd_samples", fdSteps = "fd_steps"
        }

        public init() {}
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let d = EvaluationSection()
            every = try c.decodeIfPresent(Int.self, forKey: .every) ?? d.every
            samples = try c.decodeIfPresent(Int.self, forKey: .samples) ?? d.samples
            seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? d.seed
            classifier = try c.decodeIfPresent(String.self, forKey: .classifier)
            fdSamples = try c.decodeIfPresent(Int.self, forKey: .fdSamples) ?? d.fdSamples
            fdSteps = try c.decodeIfPresent(Int.self, forKey: .fdSteps) ?? d.fdSteps
        }
    }

    public var model = ModelSection()
    public var data = DataSection()
    public var trainer = TrainerConfig()
    public var sampling = SamplingSection()
    public var evaluation = EvaluationSection()

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        model = try c.decodeIfPresent(ModelSection.self, forKey: .model) ?? ModelSection()
        data = try c.decodeIfPresent(DataSection.self, forKey: .data) ?? DataSection()
        trainer = try c.decodeIfPresent(TrainerConfig.self, forKey: .trainer) ?? TrainerConfig()
        sampling = try c.decodeIfPresent(SamplingSection.self, forKey: .sampling) ?? SamplingSection()
        evaluation = try c.decodeIfPresent(EvaluationSection.self, forKey: .evaluation) ?? EvaluationSection()
    }

    /// Keys that may change when resuming (beyond the shared ones): when and how grids and
    /// evaluations are made, and where the first stage for grids comes from.
    public static let changeableKeys: Set<String> = TrainingResume.changeableKeys.union([
        "sampling.", "evaluation.", "data.autoencoder", "data.cache",
    ])

    public func validationErrors() -> [String] {
        var errors = model.diffusion.validationErrors(prefix: "model")
        if !(model.baseLearningRate > 0) { errors.append("model.base_learning_rate must be positive") }
        if !(model.weightDecay >= 0) { errors.append("model.weight_decay must not be negative") }
        if !(0...1).contains(model.ema.decay) { errors.append("model.ema.decay must be in [0, 1]") }
        if data.batchSize <= 0 { errors.append("data.batch_size must be positive") }
        if data.shuffleWindow <= 0 { errors.append("data.shuffle_window must be positive") }
        if sampling.every < 0 || evaluation.every < 0 { errors.append("sampling.every and evaluation.every must not be negative") }
        if sampling.perClass < 1 { errors.append("sampling.per_class must be at least 1") }
        if !["ddim", "ddpm"].contains(sampling.sampler) { errors.append("sampling.sampler must be ddim or ddpm, got \(sampling.sampler)") }
        if sampling.steps < 1 || sampling.steps > model.schedule.timesteps {
            errors.append("sampling.steps must be in 1...\(model.schedule.timesteps) (the schedule's T), got \(sampling.steps)")
        }
        if model.conditioning.isTextConditional {
            if data.captions.source == .cache && (sampling.prompts ?? []).isEmpty {
                errors.append("sampling.prompts is required for grids of a text model trained on cached captions")
            }
        } else if sampling.prompts != nil {
            errors.append("sampling.prompts is set, but model.conditioning is not text (encoder: text)")
        }
        if model.conditioning.usesConcat && data.images == nil {
            errors.append("data.images is required for a \(model.conditioning.spatial?.task.rawValue ?? "spatially") conditioned model: "
                + "the data section the cache was encoded from (its images make the condition)")
        }
        if evaluation.samples < 0 { errors.append("evaluation.samples must not be negative") }
        if evaluation.classifier != nil && model.conditioning.usesConcat {
            errors.append("evaluation.classifier (the light generation check) is for class and text models; a "
                + "\(model.conditioning.spatial?.task.rawValue ?? "concat") model is evaluated with `ldm evaluate ldm`")
        }
        if evaluation.classifier != nil && (evaluation.fdSamples < 2 || evaluation.fdSteps < 1) {
            errors.append("evaluation.fd_samples must be at least 2 and evaluation.fd_steps at least 1")
        }
        errors += trainer.validationErrors()
        return errors
    }
}
