import Distributed
import Foundation
import Tensor

/// What the evaluation classifier says of a set of images, as exact sums that ranks reduce:
/// accuracy against intended labels, and an Inception-Score-style score,
/// exp(E_x KL(p(y|x) ‖ p(y))) with p(y) the mean prediction (Salimans et al. 2016, with the
/// evaluation classifier in place of Inception-v3, so its values are only comparable between
/// reports naming the same classifier). E_x KL = E_x Σ p log p − Σ p̄ log p̄, both sums exact.
public struct ClassifierScores: Sendable, Equatable {
    public let classCount: Int
    public private(set) var count = 0
    public private(set) var correct = 0
    /// Σ_x p(y|x), per class.
    public private(set) var probabilitySum: [Double]
    /// Σ_x Σ_y p log p.
    public private(set) var negativeEntropySum = 0.0

    public init(classCount: Int) {
        precondition(classCount > 0)
        self.classCount = classCount
        probabilitySum = [Double](repeating: 0, count: classCount)
    }

    /// Adds a batch of logits [N, classes] with the labels the images should have (nil: no accuracy).
    public mutating func add(logits: Tensor, labels: [Int]?) {
        precondition(logits.rank == 2 && logits.shape[1] == classCount, "ClassifierScores: logits \(logits.shape)")
        let n = logits.shape[0], c = classCount
        let p = logits.softmax(alongAxis: 1).scalars
        for i in 0..<n {
            var best = 0
            for y in 0..<c {
                let v = Double(p[i * c + y])
                probabilitySum[y] += v
                if v > 0 { negativeEntropySum += v * Foundation.log(v) }
                if p[i * c + y] > p[i * c + best] { best = y }
            }
            if let labels, labels[i] == best { correct += 1 }
        }
        count += n
    }

    public func reduced(over communicator: Communicator) throws -> ClassifierScores {
        var packed = [Double(count), Double(correct), negativeEntropySum] + probabilitySum
        try packed.withUnsafeMutableBufferPointer { try communicator.allreduce($0, op: .sum) }
        var result = ClassifierScores(classCount: classCount)
        result.count = Int(packed[0])
        result.correct = Int(packed[1])
        result.negativeEntropySum = packed[2]
        result.probabilitySum = Array(packed[3...])
        return result
    }

    public var accuracy: Double { Double(correct) / Double(max(count, 1)) }

    /// exp(E_x KL(p(y|x) ‖ p(y))): 1 when every prediction is the same, the class count when
    /// each image is one confident class and the classes are balanced.
    public var inceptionScore: Double {
        let n = Double(max(count, 1))
        var marginalTerm = 0.0
        for s in probabilitySum where s > 0 { marginalTerm += (s / n) * Foundation.log(s / n) }
        return Foundation.exp(negativeEntropySum / n - marginalTerm)
    }
}
