import Tensor

/// A random generator shared by reference between the modules that draw from it (the
/// dropout layers of one model), so the model's whole stochastic state is one saved value.
public final class RandomSource {
    public var generator: RandomGenerator

    public init(seed: UInt64) { generator = RandomGenerator(seed: seed) }
}
