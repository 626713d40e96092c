import Tensor

/// torch.nn.Embedding: a [count, dimension] table initialised N(0, 1).
public final class Embedding: Module {
    public let weight: Tensor

    public init(_ count: Int, _ dimension: Int, generator: inout RandomGenerator) {
        precondition(count > 0 && dimension > 0, "Embedding(\(count), \(dimension)): sizes must be positive")
        weight = Tensor.randomNormal([count, dimension], generator: &generator).asParameter()
    }

    /// Rows for `indices` → [indices.count, dimension].
    public func callAsFunction(_ indices: [Int]) -> Tensor {
        Tensor.embedding(table: weight, indices: indices)
    }
}
