import Tensor

/// torch.nn.Dropout: active only in training mode. The randomness comes from the caller's
/// generator (there is no global one), so runs and resumes are reproducible.
public final class Dropout: Module {
    public let probability: Float

    public init(_ probability: Float) {
        precondition(probability >= 0 && probability <= 1, "Dropout(\(probability)): probability must be in [0, 1]")
        self.probability = probability
    }

    public func callAsFunction(_ x: Tensor, generator: inout RandomGenerator) -> Tensor {
        x.dropout(probability: probability, generator: &generator, training: isTraining)
    }
}
