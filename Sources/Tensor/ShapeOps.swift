// Reshape, permute, concatenate and slice, with their backward rules.

extension Tensor {
    /// Same data seen with another shape; one dimension may be -1 (inferred). Shares storage.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var s = newShape
        if let i = s.firstIndex(of: -1) {
            let known = s.enumerated().filter { $0.offset != i }.map(\.element).reduce(1, *)
            precondition(known > 0 && count % known == 0, "cannot reshape \(shape) to \(newShape)")
            s[i] = count / known
        }
        precondition(Tensor.elementCount(s) == count, "cannot reshape \(shape) (\(count) elements) to \(newShape)")
        if s == shape { return self }
        let out = Tensor(shape: s, storage: storage)
        return out.recorded("reshape", inputs: [self]) { [shape] g in [g.reshaped(shape)] }
    }

    /// Dimensions reordered: output dimension i is input dimension `axes[i]`.
    public func permuted(_ axes: [Int]) -> Tensor {
        precondition(axes.sorted() == Array(0..<rank), "permuted: \(axes) is not a permutation of 0..<\(rank)")
        if axes == Array(0..<rank) { return self }
        let outShape = axes.map { shape[$0] }
        let out = Tensor(uninitialized: outShape)
        var inStrides = [Int](repeating: 1, count: rank)
        for i in stride(from: rank - 2, through: 0, by: -1) { inStrides[i] = inStrides[i + 1] * shape[i + 1] }
        let srcStrides = axes.map { inStrides[$0] }
        let inner = outShape[rank - 1], innerStride = srcStrides[rank - 1]
        let rows = count / max(inner, 1)
        let p = pointer, o = out.pointer
        Parallel.forRange(rows, grain: max(1, 16384 / max(inner, 1))) { r in
            for row in r {
                let dst = o + row * inner, src = p + Broadcast.rowOffset(row, shape: outShape, strides: srcStrides)
                for j in 0..<inner { dst[j] = src[j * innerStride] }
            }
        }
        var inverse = [Int](repeating: 0, count: rank)
        for (i, a) in axes.enumerated() { inverse[a] = i }
        return out.recorded("permute", inputs: [self]) { g in [g.permuted(inverse)] }
    }

    /// Swaps two dimensions.
    public func transposed(_ a: Int = -2, _ b: Int = -1) -> Tensor {
        var axes = Array(0..<rank)
        axes.swapAt(normalizedAxis(a), normalizedAxis(b))
        return permuted(axes)
    }

    /// Joins tensors along `axis`; all other dimensions must agree.
    public static func concatenate(_ tensors: [Tensor], alongAxis axis: Int) -> Tensor {
        precondition(!tensors.isEmpty, "concatenate needs at least one tensor")
        let first = tensors[0]
        let a = first.normalizedAxis(axis)
        for t in tensors {
            precondition(t.rank == first.rank && t.shape.enumerated().allSatisfy { $0.offset == a || $0.element == first.shape[$0.offset] },
                         "concatenate along \(axis): shape \(t.shape) does not match \(first.shape)")
        }
        let outer = first.shape[..<a].reduce(1, *), inner = first.shape[(a + 1)...].reduce(1, *)
        let sizes = tensors.map { $0.shape[a] }
        var outShape = first.shape
        outShape[a] = sizes.reduce(0, +)
        let out = Tensor(uninitialized: outShape)
        let total = outShape[a] * inner
        var offset = 0
        for t in tensors {
            let len = t.shape[a] * inner, src = t.pointer, dst = out.pointer + offset
            Parallel.forRange(outer, grain: max(1, 16384 / max(len, 1))) { r in
                for i in r { (dst + i * total).update(from: src + i * len, count: len) }
            }
            offset += len
        }
        return out.recorded("concat", inputs: tensors) { g in
            g.split(sizes: sizes, alongAxis: a).enumerated().map { tensors[$0.offset].requiresGrad ? $0.element : nil }
        }
    }

    /// Cuts along `axis` into consecutive pieces of the given sizes.
    public func split(sizes: [Int], alongAxis axis: Int) -> [Tensor] {
        let a = normalizedAxis(axis)
        precondition(sizes.reduce(0, +) == shape[a], "split sizes \(sizes) do not add up to \(shape[a]) along axis \(axis)")
        var start = 0
        return sizes.map { n in
            defer { start += n }
            return slice(alongAxis: a, start ..< start + n)
        }
    }

    /// Elements `range` along `axis`.
    public func slice(alongAxis axis: Int, _ range: Range<Int>) -> Tensor {
        let a = normalizedAxis(axis)
        precondition(range.lowerBound >= 0 && range.upperBound <= shape[a], "slice \(range) out of bounds for axis \(axis) of \(shape)")
        let outer = shape[..<a].reduce(1, *), inner = shape[(a + 1)...].reduce(1, *)
        var outShape = shape
        outShape[a] = range.count
        let out = Tensor(uninitialized: outShape)
        let len = range.count * inner, rowLen = shape[a] * inner
        let src = pointer + range.lowerBound * inner, dst = out.pointer
        Parallel.forRange(outer, grain: max(1, 16384 / max(len, 1))) { r in
            for i in r { (dst + i * len).update(from: src + i * rowLen, count: len) }
        }
        return out.recorded("slice", inputs: [self]) { [shape] g in
            let full = Tensor(zeros: shape)
            let gd = full.pointer + range.lowerBound * inner, gs = g.pointer
            for i in 0..<outer { (gd + i * rowLen).update(from: gs + i * len, count: len) }
            return [full]
        }
    }

    /// Splits into `parts` equal chunks along `axis`.
    public func chunked(_ parts: Int, alongAxis axis: Int) -> [Tensor] {
        let n = shape[normalizedAxis(axis)]
        precondition(n % parts == 0, "cannot chunk size \(n) into \(parts) equal parts")
        return split(sizes: Array(repeating: n / parts, count: parts), alongAxis: axis)
    }
}
