import Data
import Distributed
import Evaluation
import Foundation
import Models
import Tensor

/// Generation quality of a set of images against held-out real images, in one or more
/// feature spaces: Fréchet distance and k-NN precision/recall per feature network, and from
/// the evaluation classifier the class accuracy and the Inception-Score-style score.
///
/// Every rank holds a share of the images; feature sums are reduced exactly and feature
/// vectors gathered (for the k-NN manifolds), so the numbers do not depend on the world size.
public struct GenerationMetrics {
    public let networks: [FeatureNetwork]
    public let classifier: EvaluationClassifier?
    public let communicator: Communicator
    public var batchSize = 64
    /// Neighbours for the precision/recall manifolds (the paper's k = 3).
    public var neighbours = 3

    public init(networks: [FeatureNetwork], classifier: EvaluationClassifier?, communicator: Communicator) {
        self.networks = networks
        self.classifier = classifier
        self.communicator = communicator
    }

    /// Features of one image set in every network, over all ranks.
    public struct FeatureSet {
        /// By network name.
        public var statistics: [String: FeatureStatistics]
        /// All ranks' feature vectors in image order, row-major, by network name.
        public var vectors: [String: [Float]]
        public var scores: ClassifierScores?
        public var count: Int
    }

    /// Features (and classifier scores against `labels`) of this rank's `images` [n, C, H, W] in
    /// [−1, 1]. A collective.
    public func features(ofShare images: Tensor, labels: [Int]?) throws -> FeatureSet {
        var statistics: [String: FeatureStatistics] = [:]
        var mine: [String: [Float]] = [:]
        var scores = classifier.map { ClassifierScores(classCount: $0.config.numClasses) }
        for network in networks {
            statistics[network.name] = FeatureStatistics(dimension: network.featureDimension)
            mine[network.name] = []
        }
        // The feature networks are frozen: each weight is reordered once for all batches.
        WeightLayoutCache.scoped { for start in stride(from: 0, to: images.shape[0], by: batchSize) {
            let end = min(start + batchSize, images.shape[0])
            let batch = images.slice(alongAxis: 0, start..<end)
            for network in networks {
                let f = network.features(batch)
                statistics[network.name]!.add(f)
                mine[network.name]! += f.scalars
            }
            if let classifier {
                classifier.eval()
                scores!.add(logits: withoutGrad { classifier(batch).logits }, labels: labels.map { Array($0[start..<end]) })
            }
        } }
        var vectors: [String: [Float]] = [:]
        for network in networks {
            statistics[network.name] = try statistics[network.name]!.reduced(over: communicator)
            vectors[network.name] = try communicator.allgather(mine[network.name]!).flatMap { $0 }
        }
        let reducedScores = try scores?.reduced(over: communicator)
        let count = try communicator.allreduce(Double(images.shape[0]), op: .sum)
        return FeatureSet(statistics: statistics, vectors: vectors, scores: reducedScores, count: Int(count))
    }

    /// Features of the first `limit` images of a labelled held-out set, ranks splitting it.
    public func features(of dataset: ImageDataset, limit: Int?, progress: ((Int, Int) -> Void)? = nil) throws -> FeatureSet {
        let count = min(limit ?? dataset.count, dataset.count)
        let share = evaluationShard(count: count, rank: communicator.rank, worldSize: communicator.size)
        var parts: [Tensor] = []
        var labels: [Int] = []
        for start in stride(from: share.lowerBound, to: share.upperBound, by: 256) {
            let (x, y) = try dataset.batch(Array(start..<min(start + 256, share.upperBound)))
            parts.append(x)
            labels += y
            progress?(start + x.shape[0] - share.lowerBound, share.count)
        }
        let images = parts.isEmpty ? Tensor(uninitialized: [0, dataset.channels, dataset.height, dataset.width])
            : Tensor.concatenate(parts, alongAxis: 0)
        return try features(ofShare: images, labels: dataset.classNames == nil ? nil : labels)
    }

    /// FD and precision/recall of `generated` against `real` in every network. Precision and
    /// recall compare equal numbers of points (the first real images), as in the paper.
    public func distances(generated: FeatureSet, real: FeatureSet) throws -> [FeatureDistances] {
        try networks.map { network in
            let d = network.featureDimension
            let fd = try FrechetDistance.between(generated.statistics[network.name]!, real.statistics[network.name]!,
                                                 names: ("generated", "real"))
            let realVectors = real.vectors[network.name]!
            let matched = Array(realVectors.prefix(min(real.count, generated.count) * d))
            let pr = try PrecisionRecall.compute(real: matched, fake: generated.vectors[network.name]!, dimension: d,
                                                 k: neighbours, communicator: communicator)
            return FeatureDistances(network: network.name, fingerprint: network.fingerprint, dimension: d, fd: fd,
                             precision: pr.precision, recall: pr.recall, k: neighbours, realCount: pr.realCount,
                             generatedCount: pr.fakeCount)
        }
    }
}
