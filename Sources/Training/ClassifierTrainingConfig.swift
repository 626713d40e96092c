import Foundation
import Models

/// The evaluation classifier's training run: `model` (architecture, optimiser), `data` (the
/// labelled images), `trainer`.
public struct ClassifierTrainingConfig: Codable, Equatable, Sendable {
    public struct ModelSection: Codable, Equatable, Sendable {
        /// Per-sample base rate: scaled by the global batch when trainer.scale_lr is true.
        public var baseLearningRate: Float = 1e-3
        public var weightDecay: Float = 0.01
        public var classifier = ClassifierConfig()
        /// Random horizontal flips of the training images (drawn for the global batch).
        public var horizontalFlip = true

        enum CodingKeys: String, CodingKey {
            case classifier
            case baseLearningRate = "base_learning_rate", weightDecay = "weight_decay", horizontalFlip = "horizontal_flip"
        }

        public init() {}

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let d = ModelSection()
            baseLearningRate = try c.decodeIfPresent(Float.self, forKey: .baseLearningRate) ?? d.baseLearningRate
            weightDecay = try c.decodeIfPresent(Float.self, forKey: .weightDecay) ?? d.weightDecay
            classifier = try c.decodeIfPresent(ClassifierConfig.self, forKey: .classifier) ?? d.classifier
            horizontalFlip = try c.decodeIfPresent(Bool.self, forKey: .horizontalFlip) ?? d.horizontalFlip
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

    public func validationErrors() -> [String] {
        var errors = model.classifier.validationErrors().map { "model.classifier: \($0)" }
        if data.resolution != model.classifier.resolution {
            errors.append("data.resolution \(data.resolution) differs from model.classifier.resolution \(model.classifier.resolution)")
        }
        if data.channels != model.classifier.inChannels {
            errors.append("data.channels \(data.channels) differs from model.classifier.in_channels \(model.classifier.inChannels)")
        }
        if data.batchSize <= 0 { errors.append("data.batch_size must be positive") }
        if model.baseLearningRate <= 0 { errors.append("model.base_learning_rate must be positive") }
        errors += trainer.validationErrors()
        return errors
    }
}
