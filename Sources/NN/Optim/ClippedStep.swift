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
}
