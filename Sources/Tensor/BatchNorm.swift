import Foundation

// Batch normalisation over [N, C, *] with PyTorch semantics: in training (or without running
// statistics) each channel is normalised with its batch mean and biased variance, and the
// running statistics, when given, move by `momentum` towards the batch mean and the unbiased
// variance; in evaluation the running statistics are used. Channels run in parallel.
//
// Synchronised batch norm (torch.nn.SyncBatchNorm): when the batch is split over several
// participants (data-parallel ranks), a `statisticsReducer` that sums a Double buffer over all
// of them in place makes the statistics those of the whole batch. Forward reduces the
// per-channel sums, each participant's centred sums and the count in one collective; backward reduces
// Σg and Σg·(x − μ), so dx is the gradient of the sum of every participant's loss. The weight
// and bias gradients stay local sums (the data-parallel gradient average combines them). The
// reducer is a collective: every participant must run the same batch-norm calls in the same
// order. This file knows nothing about how the sum is carried out.

/// Sums the buffer element-wise over every participant of a synchronised batch norm, in place.
public typealias BatchNormStatisticsReducer = (UnsafeMutableBufferPointer<Double>) -> Void

extension Tensor {
    public func batchNorm(weight: Tensor?, bias: Tensor?, runningMean: Tensor?, runningVar: Tensor?,
                          training: Bool, momentum: Float = 0.1, eps: Float = 1e-5,
                          statisticsReducer: BatchNormStatisticsReducer? = nil) -> Tensor {
        precondition(rank >= 2, "batchNorm needs [N, C, *], got \(shape)")
        let batch = shape[0], channels = shape[1]
        let spatial = count / max(batch * channels, 1), perChannel = batch * spatial
        for (label, t) in [("weight", weight), ("bias", bias), ("runningMean", runningMean), ("runningVar", runningVar)] {
            if let t { precondition(t.shape == [channels], "batchNorm: \(label) shape \(t.shape), expected [\(channels)]") }
        }
        precondition((runningMean == nil) == (runningVar == nil), "batchNorm: give both running statistics or neither")
        let useBatchStatistics = training || runningMean == nil
        let geometry = BatchNormKernel.Geometry(batch: batch, channels: channels, spatial: spatial)

        var stats = [Double](repeating: 0, count: 2 * channels)   // (mean, 1/σ) per channel
        let xp = pointer, wp = weight?.pointer, bp = bias?.pointer
        // Values per channel over all participants (the local count without a reducer).
        var total = Double(perChannel)
        if useBatchStatistics {
            let (means, variances, count) = BatchNormKernel.moments(xp, geometry, reducer: statisticsReducer)
            total = count
            precondition(total > 1, "batchNorm: expected more than 1 value per channel when training, got input shape \(shape)"
                + (statisticsReducer == nil ? "" : " (\(Int(total)) values per channel over all participants)"))
            if training, let rmp = runningMean?.pointer, let rvp = runningVar?.pointer {
                let m = Double(momentum)
                for c in 0..<channels {
                    let unbiased = variances[c] * total / (total - 1)
                    rmp[c] = Float((1 - m) * Double(rmp[c]) + m * means[c])
                    rvp[c] = Float((1 - m) * Double(rvp[c]) + m * unbiased)
                }
            }
            for c in 0..<channels {
                stats[2 * c] = means[c]; stats[2 * c + 1] = 1 / (variances[c] + Double(eps)).squareRoot()
            }
        } else {
            let rmp = runningMean!.pointer, rvp = runningVar!.pointer
            for c in 0..<channels {
                stats[2 * c] = Double(rmp[c]); stats[2 * c + 1] = 1 / (Double(rvp[c]) + Double(eps)).squareRoot()
            }
        }

        let out = Tensor(uninitialized: shape)
        let op = out.pointer
        stats.withUnsafeBufferPointer { st in
            Parallel.forEach(channels) { c in
                let centre = SplitMean(st[2 * c])
                let s8 = Float8(repeating: Float(st[2 * c + 1]) * (wp?[c] ?? 1)), b8 = Float8(repeating: bp?[c] ?? 0)
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
            // Σ g and Σ g·(x − μ) per channel, over this participant's samples.
            var sums = [Double](repeating: 0, count: 2 * channels)
            sums.withUnsafeMutableBufferPointer { s in
                Parallel.forEach(channels) { c in
                    let centre = SplitMean(stats[2 * c])
                    var sumG = 0.0, sumGX = 0.0
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
                    s[c] = sumG; s[channels + c] = sumGX
                    dwp?[c] = Float(sumGX * Double(Float(stats[2 * c + 1]))); dbp?[c] = Float(sumG)
                }
            }
            if let dxp {
                // Batch statistics: dx = (ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)) / σ with ĝ = g·w, the means
                // over every participant's values. Running statistics are constants: dx = g·w/σ.
                if useBatchStatistics, let statisticsReducer { sums.withUnsafeMutableBufferPointer { statisticsReducer($0) } }
                let sums = sums
                Parallel.forEach(channels) { c in
                    let centre = SplitMean(stats[2 * c]), rstd = Float(stats[2 * c + 1]), w = wp?[c] ?? 1
                    let kg = Float8(repeating: rstd * w)
                    var kx = Float8(), k0 = Float8()
                    if useBatchStatistics {
                        let meanG = Double(w) * sums[c] / total
                        let meanGXhat = Double(w) * Double(rstd) * sums[channels + c] / total
                        kx = Float8(repeating: Float(-Double(rstd) * Double(rstd) * meanGXhat))
                        k0 = Float8(repeating: Float(-Double(rstd) * meanG))
                    }
                    for n in 0..<batch {
                        let row = (n * channels + c) * spatial
                        Vectorized.map(spatial, gp + row, xp + row, dxp + row) { g, x in g * kg + centre.centered(x) * kx + k0 }
                    }
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
    struct Geometry {
        let batch: Int, channels: Int, spatial: Int
        @inline(__always) func row(_ n: Int, _ c: Int) -> Int { (n * channels + c) * spatial }
    }

    /// Mean and biased variance per channel, with the number of values they cover. Two passes
    /// in Double: the sums give a first mean m; the sums of (x − m) and (x − m)² around it
    /// correct the mean and give the variance without cancellation. With a reducer the
    /// statistics are those of every participant's values together, for one collective.
    static func moments(_ x: UnsafePointer<Float>, _ g: Geometry, reducer: BatchNormStatisticsReducer?)
        -> (means: [Double], variances: [Double], count: Double) {
        let channels = g.channels, total = Double(g.batch * g.spatial)
        let sums = firstPass(x, g)
        // The centre of the second pass, rounded to Float as the values it is subtracted from.
        let centres = (0..<channels).map { Float(sums[$0] / total) }
        let second = centredPass(x, g, centres)
        if let reducer { return combined(sums: sums, centres: centres, centred: second, count: total, reducer: reducer) }
        var means = [Double](repeating: 0, count: channels), variances = means
        for c in 0..<channels {
            let dm = second[c] / total
            means[c] = Double(centres[c]) + dm
            variances[c] = max(0, second[channels + c] / total - dm * dm)
        }
        return (means, variances, total)
    }

    /// Synchronised statistics with one reduction (not one for the mean and another for the
    /// variance around it): each participant centres on its own mean, and sums whatever
    /// moves its centred sums to any common centre c, so after the reduction
    ///   Σ(x − c)  = Σd + (Σn·cᵣ − c·N)
    ///   Σ(x − c)² = Σd² + 2(Σcᵣ·d − c·Σd) + (Σcᵣ·n·cᵣ − 2c·Σn·cᵣ + c²·N)
    /// about c = the global mean (from the reduced first-pass sums), rounded to Float. The
    /// last bracket is Σn(cᵣ − c)², the spread of the participants' means; its Double
    /// cancellation costs float precision only when |mean| exceeds ~10⁴·σ. With one
    /// participant every correction is exactly zero: the plain statistics, bit for bit.
    static func combined(sums: [Double], centres: [Float], centred: [Double], count n: Double,
                         reducer: BatchNormStatisticsReducer) -> (means: [Double], variances: [Double], count: Double) {
        let channels = centres.count
        // [Σx | Σd | n·cᵣ | Σd² | cᵣ·Σd | cᵣ·n·cᵣ] per channel, then the count.
        var packed = [Double](repeating: 0, count: 6 * channels + 1)
        for c in 0..<channels {
            let cr = Double(centres[c]), ncr = n * cr
            packed[c] = sums[c]
            packed[channels + c] = centred[c]
            packed[2 * channels + c] = ncr
            packed[3 * channels + c] = centred[channels + c]
            packed[4 * channels + c] = cr * centred[c]
            packed[5 * channels + c] = cr * ncr
        }
        packed[6 * channels] = n
        packed.withUnsafeMutableBufferPointer { reducer($0) }
        let total = packed[6 * channels]
        var means = [Double](repeating: 0, count: channels), variances = means
        for ch in 0..<channels {
            let c = Double(Float(packed[ch] / total))
            let sumD = packed[channels + ch], sumNC = packed[2 * channels + ch]
            let d = sumD + (sumNC - c * total)
            let spread = (packed[5 * channels + ch] - 2 * (c * sumNC)) + c * (c * total)
            let d2 = packed[3 * channels + ch] + 2 * (packed[4 * channels + ch] - c * sumD) + spread
            let dm = d / total
            means[ch] = c + dm
            variances[ch] = max(0, d2 / total - dm * dm)
        }
        return (means, variances, total)
    }

    /// Σx per channel.
    static func firstPass(_ x: UnsafePointer<Float>, _ g: Geometry) -> [Double] {
        var first = [Double](repeating: 0, count: g.channels)
        first.withUnsafeMutableBufferPointer { s in
            Parallel.forEach(g.channels) { c in
                var sum = 0.0
                for n in 0..<g.batch {
                    let r = x + g.row(n, c)
                    sum += Vectorized.sums(g.spatial) { i, len in
                        (len == Vectorized.lanes ? Vectorized.load(r + i) : Vectorized.load(r + i, count: len), Float8())
                    }.0
                }
                s[c] = sum
            }
        }
        return first
    }

    /// Σ(x − m) per channel, then Σ(x − m)², around the given centres.
    static func centredPass(_ x: UnsafePointer<Float>, _ g: Geometry, _ centres: [Float]) -> [Double] {
        var second = [Double](repeating: 0, count: 2 * g.channels)
        second.withUnsafeMutableBufferPointer { s in
            Parallel.forEach(g.channels) { c in
                let m8 = Float8(repeating: centres[c])
                var d = 0.0, d2 = 0.0
                for n in 0..<g.batch {
                    let r = x + g.row(n, c)
                    let (a, b) = Vectorized.sums(g.spatial) { i, len in
                        let v = (len == Vectorized.lanes ? Vectorized.load(r + i) : Vectorized.load(r + i, count: len)) - m8
                        return (v, v * v)
                    }
                    d += a; d2 += b
                }
                s[c] = d; s[g.channels + c] = d2
            }
        }
        return second
    }
}
