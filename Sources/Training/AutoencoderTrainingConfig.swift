import Foundation
import Models

/// A first-stage training run: `model` (architecture, loss, base lr), `data`, `trainer`.
public struct AutoencoderTrainingConfig: Codable, Equatable, Sendable {
    public struct ModelSection: Codable, Equatable, Sendable {
        public var baseLearningRate: Float = 4.5e-6
        public var autoencoder = AutoencoderConfig()
        public var loss = AutoencoderLossConfig()
        /// Weights to start from instead of the random initialisation (the reference's
        /// `ckpt_path`): a first stage written by this trainer or `ldm import-vae`, or a
        /// training checkpoint directory. Ignored when resuming.
        public var ckptPath: String?
        /// Key prefixes not taken from `ckpt_path` (they keep their initialisation).
        public var ignoreKeys: [String]?

        enum CodingKeys: String, CodingKey {
            case baseLearningRate = "base_learning_rate", autoencoder, loss
            case ckptPath = "ckpt_path", ignoreKeys = "ignore_keys"
        }

        public init() {}

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            baseLearningRate = try c.decodeIfPresent(Float.self, forKey: .baseLearningRate) ?? 4.5e-6
            autoencoder = try c.decodeIfPresent(AutoencoderConfig.self, forKey: .autoencoder) ?? AutoencoderConfig()
            loss = try c.decodeIfPresent(AutoencoderLossConfig.self, forKey: .loss) ?? AutoencoderLossConfig()
            ckptPath = try c.decodeIfPresent(String.self, forKey: .ckptPath)
            ignoreKeys = try c.decodeIfPresent([String].self, forKey: .ignoreKeys)
        }
    }

    public var model = ModelSection()
    public var data = DataConfig()
    public var trainer = TrainerConfig()

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        model = try c.decodeIfPresent(ModelSection.self, forKey: .model) ?? ModelSection()
        data = try c.decodeIfPresent(DataConfig.self, forKey: .data) ?? DataConfig()
        trainer = try c.decodeIfPresent(TrainerConfig.self, forKey: .trainer) ?? TrainerConfig()
    }

    /// Every inconsistency, as messages naming the keys.
    public func validationErrors() -> [String] {
        var errors = model.autoencoder.validationErrors().map { "model.autoencoder: \($0)" }
        if data.resolution != model.autoencoder.resolution {
            errors.append("data.resolution \(data.resolution) differs from model.autoencoder.resolution \(model.autoencoder.resolution)")
        }
        if data.channels != model.autoencoder.inChannels {
            errors.append("data.channels \(data.channels) differs from model.autoencoder.in_channels \(model.autoencoder.inChannels)")
        }
        if data.batchSize <= 0 { errors.append("data.batch_size must be positive") }
        let layers = model.loss.discNumLayers
        if PatchDiscriminator.outputSize(inputSize: data.resolution, layerCount: layers) < 1 {
            errors.append("data.resolution \(data.resolution) is too small for the PatchGAN discriminator with "
                + "model.loss.disc_num_layers \(layers): use larger images or fewer discriminator layers")
        }
        errors += trainer.validationErrors()
        return errors
    }
}

/// Loop settings shared by the trainers (the `trainer` section).
public struct TrainerConfig: Codable, Equatable, Sendable {
    public var maxSteps: Int = 1000
    public var accumulateGradBatches: Int = 1
    public var scaleLR: Bool = true
    public var seed: UInt64 = 23
    public var logEvery: Int = 50
    public var imageEvery: Int = 500
    public var checkpointEvery: Int = 1000
    /// Images of the held-out split evaluated at the end (0 = all).
    public var evaluationImages: Int = 0
    /// Where the run writes checkpoints, images and reports.
    public var runDirectory: String = "Checkpoints/run"
    /// Gradient allreduce bucket size in MiB.
    public var bucketMiB: Int = 25
    /// With several ranks, reduce gradient buckets while backward still runs (as PyTorch DDP);
    /// false: one blocking allreduce per bucket after backward. Same gradients either way.
    /// Off by default: on one node with a rank per core it measured no faster (paired runs,
    /// docs/DISTRIBUTED.md); it is for links slow enough that the transfer can be hidden.
    public var overlapAllreduce: Bool = false
    /// With several ranks on one machine, each rank runs the weight update (gradient norm,
    /// AdamW, EMA) on its share of the parameters and the ranks gather the new weights (ZeRO
    /// stage 1), instead of every rank updating all of them. Same bits either way. The LDM
    /// trainer's.
    public var shardWeightUpdate: Bool = true
    /// Global-norm gradient clipping (0 = off).
    public var gradientClip: Float = 0
    /// Retention: the newest `keep_last` checkpoints are kept…
    public var keepLast: Int = 3
    /// …and every checkpoint whose step is a multiple of `keep_every` (0 = none).
    public var keepEvery: Int = 0
    /// With several ranks, BatchNorm layers (the discriminator's) normalise with the statistics
    /// of the whole global batch (torch.nn.SyncBatchNorm), so N ranks train as one process on
    /// the global batch would. false: each rank uses its own slice's statistics, as PyTorch DDP
    /// without SyncBatchNorm (the reference): the objective then depends on the number of ranks.
    public var syncBatchNorm: Bool = true
    /// Warm-up and decay of the learning rate; nil: constant.
    public var lrSchedule: LearningRateSchedule?

    public init() {}

    enum CodingKeys: String, CodingKey {
        case seed
        case maxSteps = "max_steps", accumulateGradBatches = "accumulate_grad_batches", scaleLR = "scale_lr"
        case logEvery = "log_every", imageEvery = "image_every", checkpointEvery = "checkpoint_every"
        case evaluationImages = "evaluation_images", runDirectory = "run_dir", bucketMiB = "bucket_mib"
        case overlapAllreduce = "overlap_allreduce", shardWeightUpdate = "shard_weight_update"
        case gradientClip = "gradient_clip", keepLast = "keep_last", keepEvery = "keep_every"
        case syncBatchNorm = "sync_batchnorm", lrSchedule = "lr_schedule"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = TrainerConfig()
        maxSteps = try c.decodeIfPresent(Int.self, forKey: .maxSteps) ?? d.maxSteps
        accumulateGradBatches = try c.decodeIfPresent(Int.self, forKey: .accumulateGradBatches) ?? d.accumulateGradBatches
        scaleLR = try c.decodeIfPresent(Bool.self, forKey: .scaleLR) ?? d.scaleLR
        seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? d.seed
        logEvery = try c.decodeIfPresent(Int.self, forKey: .logEvery) ?? d.logEvery
        imageEvery = try c.decodeIfPresent(Int.self, forKey: .imageEvery) ?? d.imageEvery
        checkpointEvery = try c.decodeIfPresent(Int.self, forKey: .checkpointEvery) ?? d.checkpointEvery
        evaluationImages = try c.decodeIfPresent(Int.self, forKey: .evaluationImages) ?? d.evaluationImages
        runDirectory = try c.decodeIfPresent(String.self, forKey: .runDirectory) ?? d.runDirectory
        bucketMiB = try c.decodeIfPresent(Int.self, forKey: .bucketMiB) ?? d.bucketMiB
        overlapAllreduce = try c.decodeIfPresent(Bool.self, forKey: .overlapAllreduce) ?? d.overlapAllreduce
        shardWeightUpdate = try c.decodeIfPresent(Bool.self, forKey: .shardWeightUpdate) ?? d.shardWeightUpdate
        gradientClip = try c.decodeIfPresent(Float.self, forKey: .gradientClip) ?? d.gradientClip
        keepLast = try c.decodeIfPresent(Int.self, forKey: .keepLast) ?? d.keepLast
        keepEvery = try c.decodeIfPresent(Int.self, forKey: .keepEvery) ?? d.keepEvery
        syncBatchNorm = try c.decodeIfPresent(Bool.self, forKey: .syncBatchNorm) ?? d.syncBatchNorm
        lrSchedule = try c.decodeIfPresent(LearningRateSchedule.self, forKey: .lrSchedule)
    }

    /// The learning-rate factor for the update taken at `step`.
    public func learningRateFactor(step: Int) -> Double {
        lrSchedule?.factor(step: step, totalSteps: maxSteps) ?? 1
    }

    public func validationErrors() -> [String] {
        var errors: [String] = []
        if maxSteps < 0 { errors.append("trainer.max_steps must not be negative") }
        if accumulateGradBatches <= 0 { errors.append("trainer.accumulate_grad_batches must be positive") }
        if logEvery <= 0 || imageEvery <= 0 || checkpointEvery <= 0 {
            errors.append("trainer.log_every, image_every and checkpoint_every must be positive")
        }
        if bucketMiB <= 0 { errors.append("trainer.bucket_mib must be positive") }
        if gradientClip < 0 { errors.append("trainer.gradient_clip must not be negative") }
        if keepLast < 1 { errors.append("trainer.keep_last must be at least 1 (the newest checkpoint is always kept)") }
        if keepEvery < 0 { errors.append("trainer.keep_every must not be negative (0 keeps none for this reason)") }
        errors += lrSchedule?.validationErrors() ?? []
        return errors
    }
}
