import Foundation

// Group normalisation over [N, C, *] (PyTorch semantics: biased variance, per-channel affine),
// alone or fused with the SiLU that follows it in every autoencoder and UNet block.
//
// Each (sample, group) is one contiguous block: statistics in two passes (Double across
// blocks), then one pass writing y = x·scale_c + shift_c (and SiLU). Backward recomputes the
// normalised value from x and the saved (mean, 1/σ) instead of keeping it.

extension Tensor {
    public func groupNorm(groups: Int, weight: Tensor?, bias: Tensor?, eps: Float) -> Tensor {
        GroupNormKernel.run(self, groups: groups, weight: weight, bias: bias, eps: eps, silu: false)
    }

    /// silu(groupNorm(x)) in one pass over the data, with its own backward.
    public func groupNormSiLU(groups: Int, weight: Tensor?, bias: Tensor?, eps: Float) -> Tensor {
        GroupNormKernel.run(self, groups: groups, weight: weight, bias: bias, eps: eps, silu: true)
    }
}

enum GroupNormKernel {
    static func run(_ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Float, silu: Bool) -> Tensor {
        let name = silu ? "groupNormSiLU" : "groupNorm"
        precondition(x.rank >= 2, "\(name) needs [N, C, *], got \(x.shape)")
        let batch = x.shape[0], channels = x.shape[1]
        precondition(groups > 0 && channels % groups == 0,
                     "\(name): \(channels) channels do not split into \(groups) groups (shape \(x.shape))")
        for (label, t) in [("weight", weight), ("bias", bias)] {
            if let t { precondition(t.shape == [channels], "\(name): \(label) shape \(t.shape), expected [\(channels)]") }
        }
        let spatial = x.count / max(batch * channels, 1)
        let perGroup = channels / groups, groupSize = perGroup * spatial
        precondition(groupSize > 0, "\(name): empty groups in shape \(x.shape)")

        // (mean, 1/σ) per (sample, group), kept for backward.
        var stats = [Double](repeating: 0, count: 2 * batch * groups)
        let out = Tensor(uninitialized: x.shape)
        let xp = x.pointer, op = out.pointer
        let wp = weight?.pointer, bp = bias?.pointer
        stats.withUnsafeMutableBufferPointer { st in
            Parallel.forEach(batch * groups) { ng in
                let base = ng * groupSize
                let (mean, variance) = Vectorized.meanAndVariance(xp + base, groupSize)
                let rstd = 1 / (variance + Double(eps)).squareRoot()
                st[2 * ng] = mean; st[2 * ng + 1] = rstd
                let centre = SplitMean(mean)
                let firstChannel = (ng % groups) * perGroup
                for ci in 0..<perGroup {
                    let c = firstChannel + ci
                    let scale = Float(rstd) * (wp?[c] ?? 1)
                    let s8 = Float8(repeating: scale), b8 = Float8(repeating: bp?[c] ?? 0)
                    let row = base + ci * spatial
                    if silu {
                        Vectorized.map(spatial, xp + row, op + row) { v in
                            let z = centre.centered(v) * s8 + b8
                            return z * FastMath.sigmoid(z)
                        }
                    } else {
                        Vectorized.map(spatial, xp + row, op + row) { v in centre.centered(v) * s8 + b8 }
                    }
                }
            }
        }

        var inputs = [x]
        if let weight { inputs.append(weight) }
        if let bias { inputs.append(bias) }
        return out.recorded(name, inputs: inputs) { g in
            let (dx, dw, db) = backward(x: x, g: g, groups: groups, weight: weight, bias: bias, stats: stats, silu: silu,
                                        needInput: x.requiresGrad,
                                        needAffine: (weight?.requiresGrad ?? false) || (bias?.requiresGrad ?? false))
            var grads: [Tensor?] = [dx]
            if weight != nil { grads.append(dw) }
            if bias != nil { grads.append(db) }
            return grads
        }
    }

    /// Gradients of groupNorm(+SiLU). With ĝ = g_z·w_c (g_z the gradient reaching the norm's
    /// output, after the SiLU derivative when fused) and x̂ = (x − μ)/σ over a group of M:
    ///   dx = (ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)) / σ,  dw_c = Σ g_z·x̂,  db_c = Σ g_z.
    static func backward(x: Tensor, g: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, stats: [Double], silu: Bool,
                         needInput: Bool, needAffine: Bool) -> (Tensor?, Tensor?, Tensor?) {
        let batch = x.shape[0], channels = x.shape[1]
        let spatial = x.count / (batch * channels), perGroup = channels / groups, groupSize = perGroup * spatial
        // Fused: g_z is written into dx's buffer by the first pass and transformed in place.
        let dx = (needInput || silu) ? Tensor(uninitialized: x.shape) : nil
        // Per (sample, channel) partial sums, reduced over samples in a fixed order afterwards.
        var partialW = [Double](repeating: 0, count: batch * channels)
        var partialB = [Double](repeating: 0, count: batch * channels)
        let xp = x.pointer, gp = g.pointer, dp = dx?.pointer
        let wp = weight?.pointer, bp = bias?.pointer
        partialW.withUnsafeMutableBufferPointer { pw in
            partialB.withUnsafeMutableBufferPointer { pb in
                Parallel.forEach(batch * groups) { ng in
                    let centre = SplitMean(stats[2 * ng]), rstd = Float(stats[2 * ng + 1])
                    let base = ng * groupSize, firstChannel = (ng % groups) * perGroup
                    var sumG = 0.0, sumGX = 0.0   // Σ ĝ and Σ ĝ·(x − μ) over the group
                    for ci in 0..<perGroup {
                        let c = firstChannel + ci, row = base + ci * spatial
                        let w = wp?[c] ?? 1
                        let xr = xp + row, gr = gp + row
                        let sg: Double, sgx: Double
                        if silu, let dr = dp.map({ $0 + row }) {
                            // Recompute z = x̂·w + b and apply the SiLU derivative.
                            let scale = Float8(repeating: rstd * w)
                            let shift = Float8(repeating: bp?[c] ?? 0)
                            (sg, sgx) = Vectorized.sums(spatial) { i, n in
                                let full = n == Vectorized.lanes
                                let xv = full ? Vectorized.load(xr + i) : Vectorized.load(xr + i, count: n)
                                let gv = full ? Vectorized.load(gr + i) : Vectorized.load(gr + i, count: n)
                                let gz = gv * Activation.siluDerivative(centre.centered(xv) * scale + shift)
                                if full { Vectorized.store(gz, dr + i) } else { Vectorized.store(gz, dr + i, count: n) }
                                return (gz, gz * centre.centered(xv))
                            }
                        } else {
                            (sg, sgx) = Vectorized.sums(spatial) { i, n in
                                let full = n == Vectorized.lanes
                                let xv = full ? Vectorized.load(xr + i) : Vectorized.load(xr + i, count: n)
                                let gv = full ? Vectorized.load(gr + i) : Vectorized.load(gr + i, count: n)
                                return (gv, gv * centre.centered(xv))
                            }
                        }
                        let nc = (ng / groups) * channels + c
                        pw[nc] = sgx * Double(rstd)
                        pb[nc] = sg
                        sumG += Double(w) * sg
                        sumGX += Double(w) * sgx
                    }
                    guard needInput, let dp else { return }
                    let meanG = sumG / Double(groupSize)
                    let meanGXhat = Double(rstd) * sumGX / Double(groupSize)
                    // dx = k_g·g_z + k_x·(x − μ) + k_0 per channel.
                    let kx = Float(-Double(rstd) * Double(rstd) * meanGXhat)
                    let k0 = Float(-Double(rstd) * meanG)
                    for ci in 0..<perGroup {
                        let c = firstChannel + ci, row = base + ci * spatial
                        let kg = Float8(repeating: rstd * (wp?[c] ?? 1))
                        let kx8 = Float8(repeating: kx), k08 = Float8(repeating: k0)
                        let src = silu ? UnsafePointer(dp + row) : UnsafePointer(gp + row)
                        Vectorized.map(spatial, src, xp + row, dp + row) { gz, xv in gz * kg + centre.centered(xv) * kx8 + k08 }
                    }
                }
            }
        }
        guard needAffine else { return (needInput ? dx : nil, nil, nil) }
        let dw = Tensor(uninitialized: [channels]), db = Tensor(uninitialized: [channels])
        for c in 0..<channels {
            var sw = 0.0, sb = 0.0
            for n in 0..<batch { sw += partialW[n * channels + c]; sb += partialB[n * channels + c] }
            dw.pointer[c] = Float(sw); db.pointer[c] = Float(sb)
        }
        return (needInput ? dx : nil, dw, db)
    }
}
