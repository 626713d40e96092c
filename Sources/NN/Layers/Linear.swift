import Tensor

/// y = x·Wᵀ + b over the last dimension, as torch.nn.Linear (weight [out, in]).
public final class Linear: Module, UnaryLayer {
    public let weight: Tensor
    public let bias: Tensor?

    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, generator: inout RandomGenerator) {
        precondition(inFeatures > 0 && outFeatures > 0, "Linear(\(inFeatures), \(outFeatures)): sizes must be positive")
        weight = Initialization.kaimingUniform([outFeatures, inFeatures], fanIn: inFeatures, generator: &generator)
            .asParameter()
        self.bias = bias
            ? Initialization.fanInUniform([outFeatures], fanIn: inFeatures, generator: &generator).asParameter()
            : nil
    }

    public var inFeatures: Int { weight.shape[1] }
    public var outFeatures: Int { weight.shape[0] }

    /// [..., in] → [..., out].
    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.rank >= 1 && x.shape[x.rank - 1] == inFeatures,
                     "Linear(\(inFeatures), \(outFeatures)): input \(x.shape) must end in \(inFeatures)")
        let lead = Array(x.shape.dropLast())
        let flat = x.reshaped([lead.reduce(1, *), inFeatures])
        var y = flat.matmul(weight, transposeOther: true)
        if let bias { y = y + bias }
        return y.reshaped(lead + [outFeatures])
    }
}
