// Nearest-neighbour upsampling of NCHW tensors by an integer factor, with its backward rule.

extension Tensor {
    /// Each pixel repeated into a scale×scale block, like
    /// `F.interpolate(x, scale_factor=scale, mode="nearest")`.
    public func upsampledNearest(scale: Int = 2) -> Tensor {
        precondition(rank == 4, "upsampledNearest: input must be NCHW (rank 4), got shape \(shape)")
        precondition(scale >= 1, "upsampledNearest: scale must be ≥ 1, got \(scale)")
        if scale == 1 { return self }
        let h = shape[2], w = shape[3], oh = h * scale, ow = w * scale
        let planes = shape[0] * shape[1]
        let out = Tensor(uninitialized: [shape[0], shape[1], oh, ow])
        let src = pointer, dst = out.pointer
        Parallel.forRange(planes, grain: max(1, 16384 / max(oh * ow, 1))) { r in
            for plane in r {
                let s = src + plane * h * w, d = dst + plane * oh * ow
                for y in 0..<h {
                    // Build one output row, then copy it to the other scale−1 rows.
                    let row = d + y * scale * ow, inRow = s + y * w
                    for x in 0..<w {
                        let v = inRow[x]
                        for k in 0..<scale { row[x * scale + k] = v }
                    }
                    for k in 1..<scale { (row + k * ow).update(from: row, count: ow) }
                }
            }
        }
        let inShape = shape
        return out.recorded("upsampledNearest", inputs: [self]) { g in
            let gx = Tensor(uninitialized: inShape)
            let gp = g.pointer, gxp = gx.pointer
            Parallel.forRange(planes, grain: max(1, 16384 / max(oh * ow, 1))) { r in
                for plane in r {
                    let go = gp + plane * oh * ow, gi = gxp + plane * h * w
                    for y in 0..<h {
                        let gRow = gi + y * w
                        gRow.update(repeating: 0, count: w)
                        for k in 0..<scale {
                            let row = go + (y * scale + k) * ow
                            for x in 0..<w {
                                var s: Float = 0
                                for j in 0..<scale { s += row[x * scale + j] }
                                gRow[x] += s
                            }
                        }
                    }
                }
            }
            return [gx]
        }
    }
}
