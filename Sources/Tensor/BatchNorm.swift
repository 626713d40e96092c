import Foundation

// Batch normalisation over [N, C, *] with PyTorch semantics: in training (or without running
// statistics) each channel is normalised with its batch mean and biased variance, and the
// running statistics, when given, move by `momentum` towards the batch mean and the unbiased
// variance; in evaluation the running statistics are used. Channels run in parallel.

extension Tensor {
    public func batchNorm(weight: Tensor?, bias: Tensor?, runningMean: Tensor?, runningVar: Tensor?,
                          training: Bool, momentum: Float = 0.1, eps: Float = 1e-5) -> Tensor {
        precondition(rank >= 2, "batchNorm needs [N, C, *], got \(shape)")
        let batch = shape[0], channels = shape[1]
        let spatial = count / max(batch * channels, 1), perChannel = batch * spatial
        for (label, t) in [("weight", weight), ("bias", bias), ("runningMean", runningMean), ("runningVar", runningVar)] {
            if let t { precondition(t.shape == [channels], "batchNorm: \(label) shape \(t.shape), expected [\(channels)]") }
        }
        precondition((runningMean == nil) == (runningVar == nil), "batchNorm: give both running statistics or neither")
        let useBatchStatistics = training || runningMean == nil
        precondition(!useBatchStatistics || perChannel > 1,
                     "batchNorm: expected more than 1 value per channel when training, got input shape \(shape)")

        var stats = [Double](repeating: 0, count: 2 * channels)   // (mean, 1/σ) per channel
        let out = Tensor(uninitialized: shape)
        let xp = pointer, op = out.pointer, wp = weight?.pointer, bp = bias?.pointer
        let rmp = runningMean?.pointer, rvp = runningVar?.pointer
        stats.withUnsafeMutableBufferPointer { st in
            Parallel.forEach(channels) { c in
                let mean: Double, variance: Double
                if useBatchStatistics {
                    (mean, variance) = BatchNormKernel.channelMoments(xp, channel: c, batch: batch,
                                                                      channels: channels, spatial: spatial)
                    if training, let rmp, let rvp {
                        let unbiased = variance * Double(perChannel) / Double(perChannel - 1)
                        rmp[c] = Float((1 - Double(momentum)) * Double(rmp[c]) + Double(momentum) * mean)
                        rvp[c] = Float((1 - Double(momentum)) * Double(rvp[c]) + Double(momentum) * unbiased)
                    }
                } else {
                    mean = Double(rmp![c]); variance = Double(rvp![c])
                }
                let rstd = 1 / (variance + Double(eps)).squareRoot()
                st[2 * c] = mean; st[2 * c + 1] = rstd
                let centre = SplitMean(mean)
                let s8 = Float8(repeating: Float(rstd) * (wp?[c] ?? 1)), b8 = Float8(repeating: bp?[c] ?? 0)
                for n in 0..<batch {
                    let row = (n * channels + c) * spatial
                    Vectorized.map(spatial, xp + row, op + row) { v in centre.centered(v) * s8 + b8 }
                }
            }
        }

        var inputs = [self]
        if let weight { inputs.append(weight) }
        if let bias { inputs.append(bias) }
        return out.recorded("batchNorm", inputs: inputs) { [x = self] g in
            let dx = x.requiresGrad ? Tensor(uninitialized: x.shape) : nil
            let needAffine = weight?.requiresGrad == true || bias?.requiresGrad == true
            let dw = needAffine ? Tensor(uninitialized: [channels]) : nil
            let db = needAffine ? Tensor(uninitialized: [channels]) : nil
            let gp = g.pointer, dxp = dx?.pointer, dwp = dw?.pointer, dbp = db?.pointer
            Parallel.forEach(channels) { c in
                let centre = SplitMean(stats[2 * c]), rstd = Float(stats[2 * c + 1]), w = wp?[c] ?? 1
                var sumG = 0.0, sumGX = 0.0   // Σ g and Σ g·(x − μ) over the channel
                for n in 0..<batch {
                    let row = (n * channels + c) * spatial
                    let xr = xp + row, gr = gp + row
                    let (sg, sgx) = Vectorized.sums(spatial) { i, len in
                        let full = len == Vectorized.lanes
                        let xv = full ? Vectorized.load(xr + i) : Vectorized.load(xr + i, count: len)
                        let gv = full ? Vectorized.load(gr + i) : Vectorized.load(gr + i, count: len)
                        return (gv, gv * centre.centered(xv))
                    }
                    sumG += sg; sumGX += sgx
                }
                dwp?[c] = Float(sumGX * Double(rstd)); dbp?[c] = Float(sumG)
                guard let dxp else { return }
                // Batch statistics: dx = (ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)) / σ with ĝ = g·w.
                // Running statistics are constants: dx = g·w/σ.
                let kg = Float8(repeating: rstd * w)
                var kx = Float8(), k0 = Float8()
                if useBatchStatistics {
                    let meanG = Double(w) * sumG / Double(perChannel)
                    let meanGXhat = Double(w) * Double(rstd) * sumGX / Double(perChannel)
                    kx = Float8(repeating: Float(-Double(rstd) * Double(rstd) * meanGXhat))
                    k0 = Float8(repeating: Float(-Double(rstd) * meanG))
                }
                for n in 0..<batch {
                    let row = (n * channels + c) * spatial
                    Vectorized.map(spatial, gp + row, xp + row, dxp + row) { g, x in g * kg + centre.centered(x) * kx + k0 }
                }
            }
            var grads: [Tensor?] = [dx]
            if weight != nil { grads.append(dw) }
            if bias != nil { grads.append(db) }
            return grads
        }
    }
}

enum BatchNormKernel {
    /// Mean and biased variance of one channel across the batch (two passes, Double).
    static func channelMoments(_ x: UnsafePointer<Float>, channel c: Int, batch: Int, channels: Int,
                               spatial: Int) -> (Double, Double) {
        var sum = 0.0
        for n in 0..<batch {
            let r = x + (n * channels + c) * spatial
            sum += Vectorized.sums(spatial) { i, len in
                (len == Vectorized.lanes ? Vectorized.load(r + i) : Vectorized.load(r + i, count: len), Float8())
            }.0
        }
        let total = Double(batch * spatial)
        let mean = sum / total
        let m8 = Float8(repeating: Float(mean))
        var d = 0.0, d2 = 0.0
        for n in 0..<batch {
            let r = x + (n * channels + c) * spatial
            let (a, b) = Vectorized.sums(spatial) { i, len in
                let v = (len == Vectorized.lanes ? Vectorized.load(r + i) : Vectorized.load(r + i, count: len)) - m8
                return (v, v * v)
            }
            d += a; d2 += b
        }
        let dm = d / total
        return (Double(Float(mean)) + dm, max(0, d2 / total - dm * dm))
    }
}
