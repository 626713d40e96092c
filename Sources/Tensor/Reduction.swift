// Sums and means, over everything or along axes, with their backward rules.
//
// Partial sums use fixed-size blocks combined in a fixed order, so a reduction gives the same
// bits whatever the thread count: ranks with different core counts still agree exactly.

extension Tensor {
    static let reductionBlock = 4096

    /// Sum of all elements as a Double, deterministic for any thread count.
    public func sumAsDouble() -> Double {
        let n = count, p = pointer
        let blocks = (n + Tensor.reductionBlock - 1) / Tensor.reductionBlock
        var partial = [Double](repeating: 0, count: blocks)
        partial.withUnsafeMutableBufferPointer { part in
            Parallel.forRange(blocks, grain: 4) { r in
                for b in r {
                    var s: Double = 0
                    for i in (b * Tensor.reductionBlock)..<min(n, (b + 1) * Tensor.reductionBlock) { s += Double(p[i]) }
                    part[b] = s
                }
            }
        }
        return partial.reduce(0, +)
    }

    /// Sum of all elements, a scalar tensor.
    public func sum() -> Tensor {
        let out = Tensor(scalar: Float(sumAsDouble()))
        return out.recorded("sum", inputs: [self]) { [shape] g in [Tensor(repeating: g.item, shape: shape)] }
    }

    /// Mean of all elements, a scalar tensor.
    public func mean() -> Tensor {
        let n = Float(count)
        let out = Tensor(scalar: Float(sumAsDouble() / Double(count)))
        return out.recorded("mean", inputs: [self]) { [shape] g in [Tensor(repeating: g.item / n, shape: shape)] }
    }

    /// Sum along one axis, as [outer, n, inner] → [outer, inner].
    func sumAxis(_ axis: Int, keepingDimension: Bool) -> Tensor {
        let a = normalizedAxis(axis)
        let outer = shape[..<a].reduce(1, *), n = shape[a], inner = shape[(a + 1)...].reduce(1, *)
        var outShape = shape
        if keepingDimension { outShape[a] = 1 } else { outShape.remove(at: a) }
        let out = Tensor(zeros: outShape)
        let p = pointer, o = out.pointer
        if inner == 1 {
            Parallel.forRange(outer, grain: max(1, 8192 / max(n, 1))) { r in
                for i in r {
                    var s: Double = 0
                    let row = p + i * n
                    for k in 0..<n { s += Double(row[k]) }
                    o[i] = Float(s)
                }
            }
        } else {
            Parallel.forRange(outer * inner, grain: 2048) { r in
                // Each output element sums its column; iterate k outermost within the range so
                // consecutive j vectorise.
                var start = r.lowerBound
                while start < r.upperBound {
                    let i = start / inner, j0 = start % inner
                    let j1 = min(inner, j0 + (r.upperBound - start))
                    let dst = o + i * inner
                    for k in 0..<n {
                        let src = p + (i * n + k) * inner
                        for j in j0..<j1 { dst[j] += src[j] }
                    }
                    start += j1 - j0
                }
            }
        }
        return out
    }

    /// Sum along `axes`; with `keepingDimensions` the reduced axes stay with size 1.
    public func sum(alongAxes axes: [Int], keepingDimensions: Bool = false) -> Tensor {
        let normalized = Set(axes.map(normalizedAxis)).sorted(by: >)
        var out = self
        withoutGrad {
            for a in normalized { out = out.sumAxis(a, keepingDimension: true) }
        }
        if out === self { out = copy() }
        var keptShape = shape
        for a in normalized { keptShape[a] = 1 }
        let finalShape = keepingDimensions ? keptShape : shape.enumerated().filter { !normalized.contains($0.offset) }.map(\.element)
        let result = Tensor(shape: finalShape, storage: out.storage)
        return result.recorded("sum_axes", inputs: [self]) { [shape] g in
            [g.reshaped(keptShape).expanded(to: shape)]
        }
    }

    public func sum(alongAxis axis: Int, keepingDimension: Bool = false) -> Tensor {
        sum(alongAxes: [axis], keepingDimensions: keepingDimension)
    }

    /// Mean along `axes`.
    public func mean(alongAxes axes: [Int], keepingDimensions: Bool = false) -> Tensor {
        let n = Set(axes.map(normalizedAxis)).map { shape[$0] }.reduce(1, *)
        return sum(alongAxes: axes, keepingDimensions: keepingDimensions) * (1 / Float(n))
    }

    public func mean(alongAxis axis: Int, keepingDimension: Bool = false) -> Tensor {
        mean(alongAxes: [axis], keepingDimensions: keepingDimension)
    }

    /// Largest element (not differentiable; for metrics and checks).
    public func maxValue() -> Float { buffer.max() ?? -.infinity }
    public func minValue() -> Float { buffer.min() ?? .infinity }
    public var hasNonFinite: Bool { buffer.contains { !$0.isFinite } }
}
