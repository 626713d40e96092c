import Tensor

extension Adam {
    /// One training step's weight update: clip_grad_norm_(parameters, maxNorm), step(), and
    /// (with `ema`) ema.update(from: model), as one pass over memory instead of four. The
    /// update is memory-bound, and on every data-parallel rank it runs in full whatever the
    /// batch; reading and writing each parameter's five arrays once makes it about a quarter
    /// cheaper (Benchmarks update). The result is bit-identical to the separate calls; the gradients are left
    /// unscaled (the caller drops them). `maxNorm` .infinity only measures the norm.
    /// Returns the norm before clipping.
    @discardableResult
    public func clipAndStep(maxNorm: Float, averaging ema: ExponentialMovingAverage? = nil, of model: Module? = nil) -> Float {
        precondition((ema == nil) == (model == nil), "clipAndStep: an EMA needs the model it averages, and only then")
        return OpProfiler.measure(.other, "optimizer step") {
            let norm = gradientNorm(parameters.compactMap { $0.1.grad })
            let averaging = ema.map { $0.beginUpdate(from: model!) }
            update(gradientScale: clipCoefficient(norm: norm, maxNorm: maxNorm), averaging: averaging)
            averaging?.finish()
            return norm
        }
    }

    /// Each parameter's Σ grad² for the parameters at `indices`, 0 elsewhere and where there is
    /// no gradient: one rank's part of the global norm when the update is sharded. Summed over
    /// ranks (each entry comes from one rank, so the sum is exact) and then in parameter order
    /// by `norm(ofSquares:)`, it gives `clipAndStep`'s norm to the bit.
    public func squaredGradientNorms(_ indices: Range<Int>) -> [Double] {
        var squares = [Double](repeating: 0, count: parameters.count)
        for i in indices { if let g = parameters[i].1.grad { squares[i] = squaredNorm(g) } }
        return squares
    }

    /// The global gradient norm from every parameter's Σ grad², summed in order (the one sum
    /// `gradientNorm` and so `clipAndStep` use).
    public static func norm(ofSquares squares: [Double]) -> Float {
        var sum: Double = 0
        for s in squares { sum += s }
        return Float(sum.squareRoot())
    }

    /// One rank's share of a weight update sharded over data-parallel ranks (ZeRO stage 1):
    /// `clipAndStep` on the parameters at `indices` alone, clipped by the coefficient of
    /// `norm` (the whole gradient's, from `norm(ofSquares:)`), with their shadows moved and
    /// no other shadow touched. Element by element it is the same arithmetic, so the ranks'
    /// shares together are `clipAndStep`'s bits.
    public func clipAndStep(norm: Float, maxNorm: Float, indices: Range<Int>,
                            averaging ema: ExponentialMovingAverage? = nil, of model: Module? = nil) {
        precondition((ema == nil) == (model == nil), "clipAndStep: an EMA needs the model it averages, and only then")
        precondition(indices.clamped(to: parameters.indices) == indices, "clipAndStep: indices \(indices) outside 0..<\(parameters.count)")
        OpProfiler.measure(.other, "optimizer step") {
            let averaging = ema.map { $0.beginUpdate(from: model!) }
            update(gradientScale: clipCoefficient(norm: norm, maxNorm: maxNorm), averaging: averaging, indices: indices)
            averaging?.finish(movingOnly: parameters[indices].map(\.1))
        }
    }
}
