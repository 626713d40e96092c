import Foundation

// Layer normalisation over the last dimension (PyTorch semantics: biased variance, per-feature
// affine). Rows are independent and split across cores; the weight/bias gradients are summed
// over fixed blocks of rows in a fixed order, so they do not depend on the thread count.

extension Tensor {
    public func layerNorm(weight: Tensor?, bias: Tensor?, eps: Float = 1e-5) -> Tensor {
        precondition(rank >= 1, "layerNorm needs at least one dimension")
        let width = shape[rank - 1], rows = count / max(width, 1)
        precondition(width > 0, "layerNorm: empty last dimension in \(shape)")
        for (label, t) in [("weight", weight), ("bias", bias)] {
            if let t { precondition(t.shape == [width], "layerNorm: \(label) shape \(t.shape), expected [\(width)]") }
        }
        let ones = Tensor(repeating: 1, shape: [width]), zeros = Tensor(zeros: [width])
        let w = weight ?? ones, b = bias ?? zeros

        var stats = [Double](repeating: 0, count: 2 * rows)   // (mean, 1/σ) per row
        let out = Tensor(uninitialized: shape)
        let xp = pointer, op = out.pointer, wp = w.pointer, bp = b.pointer
        let grain = max(1, 8192 / width)
        stats.withUnsafeMutableBufferPointer { st in
            Parallel.forRange(rows, grain: grain) { r in
                for row in r {
                    let x = xp + row * width
                    let (mean, variance) = Vectorized.meanAndVariance(x, width)
                    let rstd = 1 / (variance + Double(eps)).squareRoot()
                    st[2 * row] = mean; st[2 * row + 1] = rstd
                    let centre = SplitMean(mean), r8 = Float8(repeating: Float(rstd))
                    let y = op + row * width
                    Vectorized.chunks(width) { i, n in
                        if n == Vectorized.lanes {
                            let v = centre.centered(Vectorized.load(x + i)) * r8 * Vectorized.load(wp + i) + Vectorized.load(bp + i)
                            Vectorized.store(v, y + i)
                        } else {
                            let v = centre.centered(Vectorized.load(x + i, count: n)) * r8 * Vectorized.load(wp + i, count: n)
                                + Vectorized.load(bp + i, count: n)
                            Vectorized.store(v, y + i, count: n)
                        }
                    }
                }
            }
        }

        var inputs = [self]
        if let weight { inputs.append(weight) }
        if let bias { inputs.append(bias) }
        return out.recorded("layerNorm", inputs: inputs) { [x = self] g in
            // w and b (ones/zeros when absent) are captured here so they outlive the forward.
            let gp = g.pointer, xp = x.pointer, wp = w.pointer
            var dx: Tensor? = nil
            if x.requiresGrad {
                // dx = (ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)) / σ with ĝ = g·w.
                let d = Tensor(uninitialized: x.shape)
                let dp = d.pointer
                Parallel.forRange(rows, grain: grain) { r in
                    for row in r {
                        let xr = xp + row * width, gr = gp + row * width
                        let centre = SplitMean(stats[2 * row]), rstd = Float(stats[2 * row + 1])
                        let (sumG, sumGX) = Vectorized.sums(width) { i, n in
                            let full = n == Vectorized.lanes
                            let gw = (full ? Vectorized.load(gr + i) : Vectorized.load(gr + i, count: n))
                                * (full ? Vectorized.load(wp + i) : Vectorized.load(wp + i, count: n))
                            let xv = full ? Vectorized.load(xr + i) : Vectorized.load(xr + i, count: n)
                            return (gw, gw * centre.centered(xv))
                        }
                        let meanG = Float(sumG / Double(width))
                        let kx = Float8(repeating: -rstd * rstd * rstd * Float(sumGX / Double(width)))
                        let k0 = Float8(repeating: -rstd * meanG)
                        let r8 = Float8(repeating: rstd)
                        let dr = dp + row * width
                        Vectorized.map(width, gr, wp, dr) { g, w in g * w * r8 }
                        Vectorized.map(width, dr, xr, dr) { d, x in d + centre.centered(x) * kx + k0 }
                    }
                }
                dx = d
            }
            var dw: Tensor? = nil, db: Tensor? = nil
            if weight?.requiresGrad == true || bias?.requiresGrad == true {
                (dw, db) = LayerNormKernel.affineGradients(x: xp, g: gp, stats: stats, rows: rows, width: width)
            }
            var grads: [Tensor?] = [dx]
            if weight != nil { grads.append(dw) }
            if bias != nil { grads.append(db) }
            return grads
        }
    }
}

enum LayerNormKernel {
    static let rowsPerBlock = 64

    /// dw = Σ_rows g·x̂, db = Σ_rows g: per-block partials in parallel, then blocks in order.
    static func affineGradients(x: UnsafePointer<Float>, g: UnsafePointer<Float>, stats: [Double],
                                rows: Int, width: Int) -> (Tensor, Tensor) {
        let blocks = (rows + rowsPerBlock - 1) / rowsPerBlock
        let partial = Tensor(zeros: [blocks, 2, width])
        let pp = partial.pointer
        Parallel.forEach(blocks) { blk in
            let pw = pp + blk * 2 * width, pb = pw + width
            for row in (blk * rowsPerBlock)..<min(rows, (blk + 1) * rowsPerBlock) {
                let xr = x + row * width, gr = g + row * width
                let centre = SplitMean(stats[2 * row]), r8 = Float8(repeating: Float(stats[2 * row + 1]))
                Vectorized.chunks(width) { i, n in
                    let full = n == Vectorized.lanes
                    let xv = full ? Vectorized.load(xr + i) : Vectorized.load(xr + i, count: n)
                    let gv = full ? Vectorized.load(gr + i) : Vectorized.load(gr + i, count: n)
                    let accW = (full ? Vectorized.load(pw + i) : Vectorized.load(pw + i, count: n)) + gv * centre.centered(xv) * r8
                    let accB = (full ? Vectorized.load(pb + i) : Vectorized.load(pb + i, count: n)) + gv
                    if full {
                        Vectorized.store(accW, pw + i); Vectorized.store(accB, pb + i)
                    } else {
                        Vectorized.store(accW, pw + i, count: n); Vectorized.store(accB, pb + i, count: n)
                    }
                }
            }
        }
        let dw = Tensor(uninitialized: [width]), db = Tensor(uninitialized: [width])
        for j in 0..<width {
            var sw = 0.0, sb = 0.0
            for blk in 0..<blocks {
                sw += Double(pp[blk * 2 * width + j]); sb += Double(pp[blk * 2 * width + width + j])
            }
            dw.pointer[j] = Float(sw); db.pointer[j] = Float(sb)
        }
        return (dw, db)
    }
}
