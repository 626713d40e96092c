// Inverted dropout: kept elements are scaled by 1/(1 − p) so evaluation needs no rescaling.

extension Tensor {
    /// Zeroes each element with probability `probability` and scales the rest by 1/(1 − p).
    /// Identity (the same tensor) when not training or p = 0. Draws one uniform per element
    /// from `generator`, in element order.
    public func dropout(probability: Float, generator: inout RandomGenerator, training: Bool) -> Tensor {
        precondition(probability >= 0 && probability <= 1, "dropout probability \(probability) is not in [0, 1]")
        guard training, probability > 0 else { return self }
        let keepScale: Float = probability < 1 ? 1 / (1 - probability) : 0
        let mask = Tensor(uninitialized: shape)
        let m = mask.pointer
        for i in 0..<count { m[i] = generator.nextUniform() < probability ? 0 : keepScale }
        let out = Tensor(uninitialized: shape)
        Vectorized.parallelMap(count, pointer, m, out.pointer) { x, m in x * m }
        return out.recorded("dropout", inputs: [self]) { g in
            let dx = Tensor(uninitialized: g.shape)
            Vectorized.parallelMap(g.count, g.pointer, mask.pointer, dx.pointer) { g, m in g * m }
            return [dx]
        }
    }
}
