import Data
import Distributed
import Evaluation
import Foundation
import Models
import Tensor

/// The evaluation classifier on a labelled image set: accuracy and the classifier scores,
/// each rank scoring its own contiguous share, exact counts reduced.
public enum ClassifierEvaluation {
    public struct Result {
        public let scores: ClassifierScores
        public let seconds: Double
        public var accuracy: Double { scores.accuracy }
        public var count: Int { scores.count }
    }

    /// Checks that the classifier was made for images like these.
    public static func check(_ classifier: EvaluationClassifier, file: String, channels: Int, resolution: Int, classCount: Int?) throws {
        let c = classifier.config
        if c.inChannels != channels || c.resolution != resolution {
            throw ConfigError(file: file, "the classifier takes \(c.inChannels)×\(c.resolution)×\(c.resolution) images, the data is "
                + "\(channels)×\(resolution)×\(resolution): train one on this data (`ldm train-classifier`)")
        }
        if let classCount, classCount != c.numClasses {
            throw ConfigError(file: file, "the classifier knows \(c.numClasses) classes, the data has \(classCount): train one on this data")
        }
    }

    public static func evaluate(_ model: EvaluationClassifier, on dataset: ImageDataset, limit: Int? = nil, batchSize: Int = 128,
                                communicator: Communicator) throws -> Result {
        let started = Date()
        let count = min(limit ?? dataset.count, dataset.count)
        let share = evaluationShard(count: count, rank: communicator.rank, worldSize: communicator.size)
        var scores = ClassifierScores(classCount: model.config.numClasses)
        model.eval()
        defer { model.train() }
        for start in stride(from: share.lowerBound, to: share.upperBound, by: batchSize) {
            let (x, labels) = try dataset.batch(Array(start..<min(start + batchSize, share.upperBound)))
            scores.add(logits: withoutGrad { model(x).logits }, labels: labels)
        }
        return Result(scores: try scores.reduced(over: communicator), seconds: Date().timeIntervalSince(started))
    }
}
