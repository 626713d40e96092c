import NN
import Tensor

func checkedLabels(_ batch: ConditionBatch, classes: Int) throws -> [Int] {
    guard let labels = batch.labels, !labels.contains(where: { $0 < 0 }) else {
        throw ConditionerError.missingLabels
    }
    for (i, l) in labels.enumerated() where l >= classes {
        throw ConditionerError.labelOutOfRange(label: l, position: i, classes: classes)
    }
    return labels
}

/// The reference's `ClassEmbedder`: Embedding(n_classes + 1, d) → a one-token context
/// (B, 1, d) for cross-attention. Row n_classes is the null class of classifier-free guidance.
public final class ClassEmbedder: Module, Conditioner {
    public let embedding: Embedding
    public let classCount: Int

    public init(classes: Int, embedDim: Int, generator: inout RandomGenerator) {
        precondition(classes > 0 && embedDim > 0, "ClassEmbedder(\(classes), \(embedDim)): sizes must be positive")
        embedding = Embedding(classes + 1, embedDim, generator: &generator)
        classCount = classes
    }

    public var nullClass: Int { classCount }

    /// Context for explicit class ids (the null class allowed).
    public func context(labels: [Int]) -> CrossAttentionContext {
        CrossAttentionContext(tokens: embedding(labels).reshaped([labels.count, 1, embedding.weight.shape[1]]))
    }

    public func condition(_ batch: ConditionBatch, dropped: [Bool]) throws -> UNetConditioning {
        let labels = try checkedLabels(batch, classes: classCount)
        let used = zip(labels, dropped + Array(repeating: false, count: max(0, labels.count - dropped.count)))
            .map { $1 ? nullClass : $0 }
        return UNetConditioning(context: context(labels: used))
    }

    public func unconditional(count: Int) -> UNetConditioning {
        UNetConditioning(context: context(labels: Array(repeating: nullClass, count: count)))
    }
}

/// The `adm` path: labels go to the UNet's label embedding (num_classes = classes + 1, the
/// last row the null class). No parameters of its own.
public final class LabelConditioner: Module, Conditioner {
    public let classCount: Int

    public init(classes: Int) {
        precondition(classes > 0, "LabelConditioner(\(classes)): the class count must be positive")
        classCount = classes
    }

    public var nullClass: Int { classCount }

    public func condition(_ batch: ConditionBatch, dropped: [Bool]) throws -> UNetConditioning {
        let labels = try checkedLabels(batch, classes: classCount)
        return UNetConditioning(classLabels: zip(labels, dropped + Array(repeating: false, count: max(0, labels.count - dropped.count)))
            .map { $1 ? nullClass : $0 })
    }

    public func unconditional(count: Int) -> UNetConditioning {
        UNetConditioning(classLabels: Array(repeating: nullClass, count: count))
    }
}
