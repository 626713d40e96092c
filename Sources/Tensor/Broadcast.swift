/// NumPy-style broadcasting for elementwise binary operations.
public enum Broadcast {
    /// The shape two operands broadcast to, aligned at the trailing dimension.
    public static func shape(_ a: [Int], _ b: [Int]) -> [Int] {
        let rank = max(a.count, b.count)
        var out = [Int](repeating: 1, count: rank)
        for i in 0..<rank {
            let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
            let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
            precondition(da == db || da == 1 || db == 1, "cannot broadcast shapes \(a) and \(b)")
            out[i] = da == 1 ? db : da
        }
        return out
    }

    /// Element strides of `shape` seen as `outShape` (0 along broadcast dimensions).
    static func strides(of shape: [Int], in outShape: [Int]) -> [Int] {
        let offset = outShape.count - shape.count
        var strides = [Int](repeating: 0, count: outShape.count)
        var s = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[i + offset] = shape[i] == 1 ? 0 : s
            s *= shape[i]
        }
        return strides
    }

    /// The size of the trailing block over which an operand of `shape` is constant inside
    /// `outShape`, when it equals `outShape` on the leading dimensions and is 1 on the rest
    /// (so element `i` of the operand pairs with block `i` of the output); nil otherwise.
    static func constantBlock(of shape: [Int], in outShape: [Int]) -> Int? {
        guard shape.count == outShape.count else { return nil }
        var lead = 0
        while lead < shape.count && shape[lead] == outShape[lead] { lead += 1 }
        guard shape[lead...].allSatisfy({ $0 == 1 }) else { return nil }
        let block = outShape[lead...].reduce(1, *)
        return block > 1 ? block : nil
    }

    /// out[p·block + j] = op(full[p·block + j], perPlane[p]) for every plane p of `block`
    /// elements, or op(perPlane[p], full[p·block + j]) when the per-plane operand comes first.
    @inline(__always)
    static func applyPerPlane(_ full: UnsafePointer<Float>, _ perPlane: UnsafePointer<Float>, block: Int, count n: Int,
                              into out: UnsafeMutablePointer<Float>, perPlaneFirst: Bool, _ op: (Float, Float) -> Float) {
        Parallel.forRange(n / block, grain: max(1, 16384 / block)) { r in
            for plane in r {
                let v = perPlane[plane], o = out + plane * block, x = full + plane * block
                if perPlaneFirst {
                    for j in 0..<block { o[j] = op(v, x[j]) }
                } else {
                    for j in 0..<block { o[j] = op(x[j], v) }
                }
            }
        }
    }

    /// The element offset, under `strides`, of the first element of last-dimension row `row`
    /// of a tensor of `shape` (rows counted in row-major order).
    @inline(__always)
    static func rowOffset(_ row: Int, shape: [Int], strides: [Int]) -> Int {
        var rem = row, offset = 0
        for d in stride(from: shape.count - 2, through: 0, by: -1) {
            offset += (rem % shape[d]) * strides[d]
            rem /= shape[d]
        }
        return offset
    }

    /// out[i] = op(a[ia(i)], b[ib(i)]) over the broadcast shape.
    @inline(__always)
    static func apply(_ a: Tensor, _ b: Tensor, into out: Tensor, _ op: (Float, Float) -> Float) {
        let pa = a.pointer, pb = b.pointer, po = out.pointer
        let n = out.count
        if a.shape == b.shape {
            Parallel.forRange(n, grain: 16384) { r in for i in r { po[i] = op(pa[i], pb[i]) } }
            return
        }
        if b.count == 1 {
            let v = pb[0]
            Parallel.forRange(n, grain: 16384) { r in for i in r { po[i] = op(pa[i], v) } }
            return
        }
        if a.count == 1 {
            let v = pa[0]
            Parallel.forRange(n, grain: 16384) { r in for i in r { po[i] = op(v, pb[i]) } }
            return
        }
        let shape = out.shape
        // One operand constant over a trailing block of the other (a [N, C, 1, 1] embedding
        // added to [N, C, H, W] maps): a plane loop, without the per-row index arithmetic.
        if a.shape == shape, let block = constantBlock(of: b.shape, in: shape) {
            applyPerPlane(pa, pb, block: block, count: n, into: po, perPlaneFirst: false, op)
            return
        }
        if b.shape == shape, let block = constantBlock(of: a.shape, in: shape) {
            applyPerPlane(pb, pa, block: block, count: n, into: po, perPlaneFirst: true, op)
            return
        }
        let rank = shape.count
        let sa = strides(of: a.shape, in: shape), sb = strides(of: b.shape, in: shape)
        let inner = shape[rank - 1]
        let ia = sa[rank - 1], ib = sb[rank - 1]
        let rows = n / max(inner, 1)
        Parallel.forRange(rows, grain: max(1, 16384 / max(inner, 1))) { r in
            for row in r {
                let oa = rowOffset(row, shape: shape, strides: sa), ob = rowOffset(row, shape: shape, strides: sb)
                let o = po + row * inner, x = pa + oa, y = pb + ob
                if ia == 1 && ib == 1 {
                    for j in 0..<inner { o[j] = op(x[j], y[j]) }
                } else if ia == 1 {
                    let v = y[0]
                    for j in 0..<inner { o[j] = op(x[j], v) }
                } else if ib == 1 {
                    let v = x[0]
                    for j in 0..<inner { o[j] = op(v, y[j]) }
                } else {
                    let v = op(x[0], y[0])
                    for j in 0..<inner { o[j] = v }
                }
            }
        }
    }
}

extension Tensor {
    /// Sums a broadcast gradient back down to `shape` (the inverse of broadcasting).
    public func reduced(toShape target: [Int]) -> Tensor {
        if shape == target { return self }
        let offset = rank - target.count
        precondition(offset >= 0, "cannot reduce \(shape) to \(target)")
        var axes: [Int] = Array(0..<offset)
        for i in 0..<target.count where target[i] == 1 && shape[i + offset] != 1 { axes.append(i + offset) }
        return withoutGrad { sum(alongAxes: axes, keepingDimensions: true) }.reshaped(target)
    }
}
