import Foundation
import Tensor

/// PyTorch's default initialisers, drawn from an explicit generator.
public enum Initialization {
    /// torch.nn.init.kaiming_uniform_(w, a: √5), the default for Linear and Conv weights:
    /// gain = √(2 / (1 + a²)), bound = gain · √(3 / fan_in), which for a = √5 is 1/√fan_in.
    public static func kaimingUniform(_ shape: [Int], fanIn: Int, a: Double = 5.0.squareRoot(),
                                      generator: inout RandomGenerator) -> Tensor {
        precondition(fanIn > 0, "kaimingUniform: fan_in must be positive, shape \(shape)")
        let gain = (2 / (1 + a * a)).squareRoot()
        let bound = Float(gain * (3 / Double(fanIn)).squareRoot())
        return Tensor.randomUniform(shape, low: -bound, high: bound, generator: &generator)
    }

    /// The default Linear/Conv bias: U(−1/√fan_in, 1/√fan_in).
    public static func fanInUniform(_ shape: [Int], fanIn: Int, generator: inout RandomGenerator) -> Tensor {
        precondition(fanIn > 0, "fanInUniform: fan_in must be positive, shape \(shape)")
        let bound = Float(1 / Double(fanIn).squareRoot())
        return Tensor.randomUniform(shape, low: -bound, high: bound, generator: &generator)
    }
}

extension Tensor {
    /// Marks a freshly created tensor as a trainable parameter.
    public func asParameter() -> Tensor {
        requiresGrad = true
        return self
    }
}
