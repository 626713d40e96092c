import Foundation

// Numerically stable softmax and log-softmax (the row maximum is subtracted before exp).

extension Tensor {
    /// exp(x) / Σ exp(x) along `axis`.
    public func softmax(alongAxis axis: Int = -1) -> Tensor {
        let a = normalizedAxis(axis)
        if a != rank - 1 { return movingAxisToEnd(a) { $0.softmax() } }
        let n = shape[a], rows = count / max(n, 1)
        let out = Tensor(uninitialized: shape)
        let p = pointer, o = out.pointer
        Parallel.forRange(rows, grain: max(1, 8192 / max(n, 1))) { r in
            for row in r { _ = Softmax.row(p + row * n, o + row * n, n) }
        }
        return out.recorded("softmax", inputs: [self]) { [unowned out] g in
            // dx = y ⊙ (g − Σ g·y)
            let dx = Tensor(uninitialized: out.shape)
            let y = out.pointer, gp = g.pointer, d = dx.pointer
            Parallel.forRange(rows, grain: max(1, 8192 / max(n, 1))) { r in
                for row in r {
                    let yr = y + row * n, gr = gp + row * n
                    let dot = Float(Softmax.dot(yr, gr, n))
                    Vectorized.map(n, yr, gr, d + row * n) { y, g in y * (g - dot) }
                }
            }
            return [dx]
        }
    }

    /// x − log Σ exp(x) along `axis`.
    public func logSoftmax(alongAxis axis: Int = -1) -> Tensor {
        let a = normalizedAxis(axis)
        if a != rank - 1 { return movingAxisToEnd(a) { $0.logSoftmax() } }
        let n = shape[a], rows = count / max(n, 1)
        let out = Tensor(uninitialized: shape)
        let p = pointer, o = out.pointer
        Parallel.forRange(rows, grain: max(1, 8192 / max(n, 1))) { r in
            for row in r {
                let x = p + row * n, y = o + row * n
                let (maximum, sum) = Softmax.maxAndSumExp(x, n)
                let shift = maximum + Foundation.log(sum)
                Vectorized.map(n, x, y) { $0 - shift }
            }
        }
        return out.recorded("log_softmax", inputs: [self]) { [unowned out] g in
            // dx = g − softmax(x) · Σ g, with softmax(x) = exp(y)
            let dx = Tensor(uninitialized: out.shape)
            let y = out.pointer, gp = g.pointer, d = dx.pointer
            Parallel.forRange(rows, grain: max(1, 8192 / max(n, 1))) { r in
                for row in r {
                    let gr = gp + row * n
                    let (total, _) = Vectorized.sums(n) { i, len in
                        (len == Vectorized.lanes ? Vectorized.load(gr + i) : Vectorized.load(gr + i, count: len), Float8())
                    }
                    let s = Float(total)
                    Vectorized.map(n, y + row * n, gr, d + row * n) { y, g in g - FastMath.exp(y) * s }
                }
            }
            return [dx]
        }
    }

    /// Applies a last-axis op along axis `a` by permuting it to the end and back.
    func movingAxisToEnd(_ a: Int, _ op: (Tensor) -> Tensor) -> Tensor {
        var axes = Array(0..<rank)
        axes.remove(at: a)
        axes.append(a)
        var inverse = [Int](repeating: 0, count: rank)
        for (i, x) in axes.enumerated() { inverse[x] = i }
        return op(permuted(axes)).permuted(inverse)
    }
}

/// Row kernels shared by softmax and attention.
enum Softmax {
    /// Row maximum and Σ exp(x − max) (Double-accumulated). Entries of −∞ contribute 0.
    @inline(__always)
    static func maxAndSumExp(_ x: UnsafePointer<Float>, _ n: Int) -> (Float, Float) {
        let m = max(x, n)
        let mv = Float8(repeating: m)
        let (s, _) = Vectorized.sums(n) { i, len in
            let v = len == Vectorized.lanes ? Vectorized.load(x + i) : Vectorized.load(x + i, count: len)
            return (FastMath.exp(v - mv), Float8())
        }
        return (m, Float(s))
    }

    /// y = softmax(x) over one row of n; returns log Σ exp(x) (the log-sum-exp).
    /// `x` and `y` may be the same buffer. The row must have at least one finite entry.
    /// One exp per element: exponentials are stored while summing, then scaled.
    @inline(__always)
    static func row(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) -> Float {
        let m = max(x, n)
        let mv = Float8(repeating: m)
        let (s, _) = Vectorized.sums(n) { i, len in
            if len == Vectorized.lanes {
                let e = FastMath.exp(Vectorized.load(x + i) - mv)
                Vectorized.store(e, y + i)
                return (e, Float8())
            }
            let e = FastMath.exp(Vectorized.load(x + i, count: len) - mv)
            Vectorized.store(e, y + i, count: len)
            return (e, Float8())
        }
        let inv = Float8(repeating: Float(1 / s))
        Vectorized.map(n, y, y) { $0 * inv }
        return m + Float(Foundation.log(s))
    }

    @inline(__always)
    static func max(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var m8 = Float8(repeating: -.infinity)
        Vectorized.chunks(n) { i, len in
            m8 = lanewiseMax(m8, len == Vectorized.lanes ? Vectorized.load(x + i)
                                                         : Vectorized.load(x + i, count: len, fill: -.infinity))
        }
        return m8.max()
    }

    /// Σ a·b over n elements, Double-accumulated across blocks.
    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Double {
        Vectorized.sums(n) { i, len in
            len == Vectorized.lanes
                ? (Vectorized.load(a + i) * Vectorized.load(b + i), Float8())
                : (Vectorized.load(a + i, count: len) * Vectorized.load(b + i, count: len), Float8())
        }.0
    }
}
