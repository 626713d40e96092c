// Materialised broadcasting, the forward counterpart of `reduced(toShape:)`.

extension Tensor {
    /// A copy broadcast to `target` (NumPy rules: size-1 or missing leading dimensions repeat).
    public func expanded(to target: [Int]) -> Tensor {
        precondition(target.count >= rank && Broadcast.shape(shape, target) == target,
                     "cannot expand \(shape) to \(target)")
        if shape == target { return self }
        let out = Tensor(uninitialized: target)
        let outRank = target.count
        let strides = Broadcast.strides(of: shape, in: target)
        let inner = target[outRank - 1], innerStride = strides[outRank - 1]
        let rows = out.count / max(inner, 1)
        let p = pointer, o = out.pointer
        Parallel.forRange(rows, grain: max(1, 16384 / max(inner, 1))) { r in
            for row in r {
                let dst = o + row * inner, src = p + Broadcast.rowOffset(row, shape: target, strides: strides)
                if innerStride == 1 {
                    dst.update(from: src, count: inner)
                } else {
                    dst.update(repeating: src[0], count: inner)
                }
            }
        }
        return out.recorded("expand", inputs: [self]) { [shape] g in [g.reduced(toShape: shape)] }
    }
}
