import Foundation

// Pointwise activations (PyTorch semantics) with their backward rules, on 8-lane SIMD kernels.

extension Tensor {
    /// A pointwise op whose backward needs only the input: dx = g · derivative(x).
    @inline(__always)
    func activation(_ name: String, _ f: (Float8) -> Float8,
                    derivative: @escaping (Float8) -> Float8) -> Tensor {
        let out = Tensor(uninitialized: shape)
        Vectorized.parallelMap(count, pointer, out.pointer, f)
        return out.recorded(name, inputs: [self]) { [x = self] g in
            let dx = Tensor(uninitialized: x.shape)
            Vectorized.parallelMap(x.count, x.pointer, g.pointer, dx.pointer) { x, g in g * derivative(x) }
            return [dx]
        }
    }

    /// x · sigmoid(x) (also called swish).
    public func silu() -> Tensor {
        activation("silu", { x in x * FastMath.sigmoid(x) }, derivative: Activation.siluDerivative)
    }

    public func sigmoid() -> Tensor {
        activation("sigmoid", FastMath.sigmoid, derivative: { x in
            let s = FastMath.sigmoid(x)
            return s * (1 - s)
        })
    }

    /// max(x, 0); the gradient at 0 is 0, as in PyTorch.
    public func relu() -> Tensor {
        activation("relu", { x in lanewiseMax(x, Float8()) },
                   derivative: { x in Float8(repeating: 1).replacing(with: 0, where: x .<= 0) })
    }

    /// x for x > 0, slope · x otherwise.
    public func leakyReLU(slope: Float = 0.01) -> Tensor {
        activation("leaky_relu", { x in x.replacing(with: x * slope, where: x .<= 0) },
                   derivative: { x in Float8(repeating: 1).replacing(with: slope, where: x .<= 0) })
    }

    /// GELU: x·Φ(x) with the exact (erf) Φ by default, PyTorch's approximate="tanh" otherwise.
    public func gelu(approximateTanh: Bool = false) -> Tensor {
        approximateTanh
            ? activation("gelu_tanh", Activation.geluTanh, derivative: Activation.geluTanhDerivative)
            : activation("gelu", Activation.gelu, derivative: Activation.geluDerivative)
    }

    /// log(1 + e^x), linear above x = 20 (PyTorch's beta 1, threshold 20).
    public func softplus() -> Tensor {
        let out = Tensor(uninitialized: shape)
        let p = pointer, o = out.pointer
        // log1p has no SIMD form here; softplus is rare enough that libm is fine.
        Parallel.forRange(count, grain: 8192) { r in
            for i in r { o[i] = p[i] > 20 ? p[i] : Foundation.log1p(Foundation.exp(p[i])) }
        }
        return out.recorded("softplus", inputs: [self]) { [x = self] g in
            let dx = Tensor(uninitialized: x.shape)
            Vectorized.parallelMap(x.count, x.pointer, g.pointer, dx.pointer) { x, g in
                (g * FastMath.sigmoid(x)).replacing(with: g, where: x .> 20)
            }
            return [dx]
        }
    }

    /// GEGLU as in diffusers: the last dimension splits into halves (h, gate); returns
    /// h · gelu(gate) with the exact GELU. [..., 2H] → [..., H].
    public func geglu() -> Tensor {
        precondition(rank >= 1 && shape[rank - 1] % 2 == 0,
                     "geglu needs an even last dimension, shape is \(shape)")
        let width = shape[rank - 1] / 2, rows = count / max(2 * width, 1)
        let out = Tensor(uninitialized: Array(shape.dropLast()) + [width])
        let p = pointer, o = out.pointer
        Parallel.forRange(rows, grain: max(1, 8192 / max(width, 1))) { r in
            for row in r {
                let h = p + row * 2 * width
                Vectorized.map(width, h, h + width, o + row * width) { h, gate in h * Activation.gelu(gate) }
            }
        }
        return out.recorded("geglu", inputs: [self]) { [x = self] g in
            let dx = Tensor(uninitialized: x.shape)
            let p = x.pointer, gp = g.pointer, d = dx.pointer
            Parallel.forRange(rows, grain: max(1, 8192 / max(width, 1))) { r in
                for row in r {
                    let h = p + row * 2 * width, gate = h + width, go = gp + row * width
                    let dh = d + row * 2 * width, dgate = dh + width
                    Vectorized.map(width, gate, go, dh) { gate, g in g * Activation.gelu(gate) }
                    Vectorized.chunks(width) { i, n in
                        let full = n == Vectorized.lanes
                        let hv = full ? Vectorized.load(h + i) : Vectorized.load(h + i, count: n)
                        let gv = full ? Vectorized.load(gate + i) : Vectorized.load(gate + i, count: n)
                        let ov = full ? Vectorized.load(go + i) : Vectorized.load(go + i, count: n)
                        let v = ov * hv * Activation.geluDerivative(gv)
                        if full { Vectorized.store(v, dgate + i) } else { Vectorized.store(v, dgate + i, count: n) }
                    }
                }
            }
            return [dx]
        }
    }
}

/// Activation formulas shared by the standalone ops and fused kernels.
enum Activation {
    static let sqrtHalf: Float = 0.707_106_781_186_547_5
    static let inverseSqrtTwoPi: Float = 0.398_942_280_401_432_7
    static let sqrtTwoOverPi: Float = 0.797_884_560_802_865_4

    /// d/dx x·σ(x) = σ(x)·(1 + x·(1 − σ(x))).
    @inline(__always)
    static func siluDerivative(_ x: Float8) -> Float8 {
        let s = FastMath.sigmoid(x)
        return s * (1 + x * (1 - s))
    }

    @inline(__always)
    static func gelu(_ x: Float8) -> Float8 { 0.5 * x * (1 + FastMath.erf(x * sqrtHalf)) }

    /// Φ(x) + x·φ(x).
    @inline(__always)
    static func geluDerivative(_ x: Float8) -> Float8 {
        let cdf = 0.5 * (1 + FastMath.erf(x * sqrtHalf))
        return cdf + x * inverseSqrtTwoPi * FastMath.exp(-0.5 * x * x)
    }

    @inline(__always)
    static func geluTanh(_ x: Float8) -> Float8 {
        let u: Float8 = sqrtTwoOverPi * x * (1 + 0.044715 * x * x)
        return 0.5 * x * (1 + FastMath.tanh(u))
    }

    @inline(__always)
    static func geluTanhDerivative(_ x: Float8) -> Float8 {
        let x2 = x * x
        let t = FastMath.tanh(sqrtTwoOverPi * x * (1 + 0.044715 * x2))
        let du: Float8 = sqrtTwoOverPi * (1 + 0.134145 * x2)   // d/dx of the tanh argument
        let half: Float8 = 0.5 * (1 + t)
        return half + 0.5 * x * (1 - t * t) * du
    }
}
