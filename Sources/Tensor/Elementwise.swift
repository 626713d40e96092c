import Foundation

// Elementwise arithmetic with broadcasting, and unary math, each with its backward rule.

extension Tensor {
    @inline(__always)
    static func binary(_ a: Tensor, _ b: Tensor, _ op: (Float, Float) -> Float) -> Tensor {
        let out = Tensor(uninitialized: a.shape == b.shape ? a.shape : Broadcast.shape(a.shape, b.shape))
        Broadcast.apply(a, b, into: out, op)
        return out
    }

    @inline(__always)
    public func map(_ f: (Float) -> Float) -> Tensor {
        let out = Tensor(uninitialized: shape)
        let p = pointer, o = out.pointer
        Parallel.forRange(count, grain: 16384) { r in for i in r { o[i] = f(p[i]) } }
        return out
    }

    /// out[i] = f(self[i], other[i]) for tensors of one shape.
    @inline(__always)
    public func zipMap(_ other: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
        precondition(shape == other.shape, "zipMap: shapes \(shape) and \(other.shape) differ")
        let out = Tensor(uninitialized: shape)
        let p = pointer, q = other.pointer, o = out.pointer
        Parallel.forRange(count, grain: 16384) { r in for i in r { o[i] = f(p[i], q[i]) } }
        return out
    }

    /// self + other without recording (for gradient accumulation).
    public func adding(_ other: Tensor) -> Tensor { Tensor.binary(self, other, +) }

    /// self += other in place, same shape. Not recorded.
    public func addInPlace(_ other: Tensor, scale: Float = 1) {
        precondition(shape == other.shape, "addInPlace: \(other.shape) into \(shape)")
        let p = pointer, q = other.pointer
        Parallel.forRange(count, grain: 16384) { r in for i in r { p[i] += scale * q[i] } }
    }

    /// self *= factor in place. Not recorded.
    public func scaleInPlace(_ factor: Float) {
        let p = pointer
        Parallel.forRange(count, grain: 16384) { r in for i in r { p[i] *= factor } }
    }

    public static func + (a: Tensor, b: Tensor) -> Tensor {
        binary(a, b, +).recorded("add", inputs: [a, b]) { g in
            [a.requiresGrad ? g.reduced(toShape: a.shape) : nil,
             b.requiresGrad ? g.reduced(toShape: b.shape) : nil]
        }
    }

    public static func - (a: Tensor, b: Tensor) -> Tensor {
        binary(a, b, -).recorded("sub", inputs: [a, b]) { g in
            [a.requiresGrad ? g.reduced(toShape: a.shape) : nil,
             b.requiresGrad ? g.map { -$0 }.reduced(toShape: b.shape) : nil]
        }
    }

    public static func * (a: Tensor, b: Tensor) -> Tensor {
        binary(a, b, *).recorded("mul", inputs: [a, b]) { g in
            [a.requiresGrad ? binary(g, b, *).reduced(toShape: a.shape) : nil,
             b.requiresGrad ? binary(g, a, *).reduced(toShape: b.shape) : nil]
        }
    }

    public static func / (a: Tensor, b: Tensor) -> Tensor {
        binary(a, b, /).recorded("div", inputs: [a, b]) { g in
            [a.requiresGrad ? binary(g, b, /).reduced(toShape: a.shape) : nil,
             b.requiresGrad ? binary(binary(g, a, *), b, { $0 / ($1 * $1) * -1 }).reduced(toShape: b.shape)
                            : nil]
        }
    }

    public static prefix func - (a: Tensor) -> Tensor {
        a.map { -$0 }.recorded("neg", inputs: [a]) { g in [g.map { -$0 }] }
    }

    public static func + (a: Tensor, s: Float) -> Tensor {
        a.map { $0 + s }.recorded("add_scalar", inputs: [a]) { g in [g] }
    }
    public static func + (s: Float, a: Tensor) -> Tensor { a + s }
    public static func - (a: Tensor, s: Float) -> Tensor { a + (-s) }
    public static func - (s: Float, a: Tensor) -> Tensor {
        a.map { s - $0 }.recorded("rsub_scalar", inputs: [a]) { g in [g.map { -$0 }] }
    }
    public static func * (a: Tensor, s: Float) -> Tensor {
        a.map { $0 * s }.recorded("mul_scalar", inputs: [a]) { g in [g.map { $0 * s }] }
    }
    public static func * (s: Float, a: Tensor) -> Tensor { a * s }
    public static func / (a: Tensor, s: Float) -> Tensor { a * (1 / s) }

    /// A unary op whose derivative is expressed through input x and output y.
    @inline(__always)
    func unary(_ name: String, _ f: (Float) -> Float, derivative: @escaping (Float, Float) -> Float) -> Tensor {
        let y = map(f)
        // unowned: the node lives inside y, so a strong capture would be a cycle.
        return y.recorded(name, inputs: [self]) { [x = self, unowned y] g in
            let p = x.pointer, q = y.pointer, gp = g.pointer
            let out = Tensor(uninitialized: x.shape)
            let o = out.pointer
            Parallel.forRange(x.count, grain: 16384) { r in for i in r { o[i] = gp[i] * derivative(p[i], q[i]) } }
            return [out]
        }
    }

    public func exp() -> Tensor { unary("exp", { Foundation.exp($0) }, derivative: { _, y in y }) }
    public func log() -> Tensor { unary("log", { Foundation.log($0) }, derivative: { x, _ in 1 / x }) }
    public func sqrt() -> Tensor { unary("sqrt", { Foundation.sqrt($0) }, derivative: { _, y in 0.5 / y }) }
    public func abs() -> Tensor { unary("abs", { Swift.abs($0) }, derivative: { x, _ in x > 0 ? 1 : (x < 0 ? -1 : 0) }) }
    public func square() -> Tensor { unary("square", { $0 * $0 }, derivative: { x, _ in 2 * x }) }
    public func pow(_ p: Float) -> Tensor {
        unary("pow", { Foundation.pow($0, p) }, derivative: { x, _ in p * Foundation.pow(x, p - 1) })
    }
    public func reciprocal() -> Tensor { unary("reciprocal", { 1 / $0 }, derivative: { _, y in -y * y }) }

    /// Clamps into [lower, upper]; the gradient passes only where the value was inside.
    public func clamped(min lower: Float = -.infinity, max upper: Float = .infinity) -> Tensor {
        unary("clamp", { Swift.min(Swift.max($0, lower), upper) },
              derivative: { x, _ in (x >= lower && x <= upper) ? 1 : 0 })
    }
}
