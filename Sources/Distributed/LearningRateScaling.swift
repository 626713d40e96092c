import Foundation

/// The learning rate actually used, from the configured base rate and the size of the
/// effective batch, as the reference's `scale_lr` does:
///
///     lr = accumulate_grad_batches × ranks × batch_per_rank × base_lr
///
/// Configs state a rate per sample (`base_learning_rate`), so a run keeps the same per-sample
/// step whatever the number of ranks; reports of multi-GPU runs behaving unlike one GPU often
/// come down to this product. Without `scale`, the base rate is used as it is.
public struct LearningRateScaling: Codable, Equatable, Sendable, CustomStringConvertible {
    public let baseLearningRate: Double
    public let ranks: Int
    public let batchPerRank: Int
    public let accumulateGradientBatches: Int
    public let scale: Bool

    /// - Throws: `LearningRateScalingError` naming the bad value (counts below 1, a base rate
    ///   that is not a positive finite number).
    public init(baseLearningRate: Double, ranks: Int, batchPerRank: Int, accumulateGradientBatches: Int = 1,
                scale: Bool = true) throws {
        guard baseLearningRate.isFinite && baseLearningRate > 0 else {
            throw LearningRateScalingError.invalid("base learning rate \(baseLearningRate) must be a positive number")
        }
        for (name, value) in [("ranks", ranks), ("batch per rank", batchPerRank),
                              ("accumulate_grad_batches", accumulateGradientBatches)] where value < 1 {
            throw LearningRateScalingError.invalid("\(name) is \(value), must be at least 1")
        }
        self.baseLearningRate = baseLearningRate
        self.ranks = ranks
        self.batchPerRank = batchPerRank
        self.accumulateGradientBatches = accumulateGradientBatches
        self.scale = scale
    }

    /// Samples that contribute to one optimizer step.
    public var effectiveBatchSize: Int { accumulateGradientBatches * ranks * batchPerRank }

    public var learningRate: Double {
        scale ? Double(effectiveBatchSize) * baseLearningRate : baseLearningRate
    }

    /// The line to log at startup, in the reference's words ("ranks" for its "num_gpus").
    public var description: String {
        let lr = String(format: "%.2e", learningRate)
        guard scale else { return "Not using learning rate scaling: setting learning rate to \(lr) (base_lr)" }
        return "Setting learning rate to \(lr) = \(accumulateGradientBatches) (accumulate_grad_batches) * "
            + "\(ranks) (ranks) * \(batchPerRank) (batchsize) * \(String(format: "%.2e", baseLearningRate)) (base_lr)"
    }
}

public enum LearningRateScalingError: Error, CustomStringConvertible, Equatable {
    case invalid(String)

    public var description: String {
        switch self {
        case .invalid(let why): return "learning rate scaling: \(why)"
        }
    }
}
