import Foundation

// SIMD building blocks for the memory-bound kernels (activations, norms, softmax, attention).
//
// libm's expf/erff are scalar calls that stop loops from vectorising and cost more than the
// memory traffic they sit in, so the transcendental functions here work on 8 lanes at once,
// with accuracy close to Float32 rounding (exp within 2 ulp; erf within 1.5e-7 absolute).

typealias Float8 = SIMD8<Float>

// The standard library's pointwiseMin/Max are not inlined (an out-of-line call per vector);
// a compare and select is.
@inline(__always) func lanewiseMax(_ a: Float8, _ b: Float8) -> Float8 { a.replacing(with: b, where: a .< b) }
@inline(__always) func lanewiseMin(_ a: Float8, _ b: Float8) -> Float8 { a.replacing(with: b, where: b .< a) }

enum FastMath {
    /// e^x. Returns 0 below -87.3 (where e^x leaves the normal range), saturates at e^88.
    @inline(__always)
    static func exp(_ x: Float8) -> Float8 {
        let low = Float8(repeating: -87.3)
        let clamped = lanewiseMin(lanewiseMax(x, low), Float8(repeating: 88))
        // Adding 1.5·2²³ rounds x·log2(e) to the nearest integer n and leaves n in the low
        // mantissa bits, so no float→int conversion (and no trap check) is needed.
        let magic = Float8(repeating: 12_582_912)
        let t = clamped * Float8(repeating: 1.442_695_04) + magic
        let n = t - magic
        // r = x − n·ln2, with ln2 split in two so the product is exact to Float precision.
        let r = clamped - n * Float8(repeating: 0.693_359_375) - n * Float8(repeating: -2.121_944_4e-4)
        // Taylor series of e^r to degree 7: |r| ≤ ln2/2 keeps the truncation below 5e-9.
        var p = Float8(repeating: 1.0 / 5040)
        p = p * r + Float8(repeating: 1.0 / 720)
        p = p * r + Float8(repeating: 1.0 / 120)
        p = p * r + Float8(repeating: 1.0 / 24)
        p = p * r + Float8(repeating: 1.0 / 6)
        p = p * r + Float8(repeating: 0.5)
        p = p * r + Float8(repeating: 1)
        p = p * r + Float8(repeating: 1)
        let exponent = unsafeBitCast(t, to: SIMD8<Int32>.self) &- SIMD8<Int32>(repeating: 0x4B40_0000)
        let twoToN = unsafeBitCast((exponent &+ SIMD8<Int32>(repeating: 127)) &<< SIMD8<Int32>(repeating: 23),
                                   to: Float8.self)
        return (p * twoToN).replacing(with: 0, where: x .< low)
    }

    /// 1 / (1 + e^-x).
    @inline(__always)
    static func sigmoid(_ x: Float8) -> Float8 { 1 / (1 + exp(-x)) }

    /// tanh through e^{2x}; saturates to ±1 exactly for large |x|.
    @inline(__always)
    static func tanh(_ x: Float8) -> Float8 { 1 - 2 / (exp(2 * x) + 1) }

    /// Error function, Abramowitz & Stegun 7.1.26 (absolute error ≤ 1.5e-7).
    @inline(__always)
    static func erf(_ x: Float8) -> Float8 {
        let a = lanewiseMax(x, -x)
        let t = 1 / (1 + Float8(repeating: 0.327_591_1) * a)
        var p = Float8(repeating: 1.061_405_429)
        p = p * t + Float8(repeating: -1.453_152_027)
        p = p * t + Float8(repeating: 1.421_413_741)
        p = p * t + Float8(repeating: -0.284_496_736)
        p = p * t + Float8(repeating: 0.254_829_592)
        let y = 1 - p * t * exp(-a * a)
        return y.replacing(with: -y, where: x .< 0)
    }

    // Scalar forms (lane 0 of the vector ones) so scalar and vector paths agree bit for bit.
    @inline(__always) static func exp(_ x: Float) -> Float { exp(Float8(repeating: x))[0] }
    @inline(__always) static func sigmoid(_ x: Float) -> Float { sigmoid(Float8(repeating: x))[0] }
}

/// Loads, stores and loops over float buffers in 8-lane chunks.
enum Vectorized {
    static let lanes = 8

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> Float8 {
        UnsafeRawPointer(p).loadUnaligned(as: Float8.self)
    }

    @inline(__always)
    static func store(_ v: Float8, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: Float8.self)
    }

    /// Loads `count` (< 8) floats; the other lanes hold `fill`.
    @inline(__always)
    static func load(_ p: UnsafePointer<Float>, count: Int, fill: Float = 0) -> Float8 {
        var v = Float8(repeating: fill)
        for j in 0..<count { v[j] = p[j] }
        return v
    }

    @inline(__always)
    static func store(_ v: Float8, _ p: UnsafeMutablePointer<Float>, count: Int) {
        for j in 0..<count { p[j] = v[j] }
    }

    /// Lanes at or beyond `count` set to zero (for partial chunks inside sums).
    @inline(__always)
    static func zeroingTail(_ v: Float8, count: Int) -> Float8 {
        let lane = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7)
        return v.replacing(with: 0, where: lane .>= SIMD8<Int32>(repeating: Int32(count)))
    }

    /// Calls `body(i, n)` for consecutive chunks of `n` ≤ 8 elements covering `0..<count`.
    @inline(__always)
    static func chunks(_ count: Int, _ body: (Int, Int) -> Void) {
        var i = 0
        while i + lanes <= count { body(i, lanes); i += lanes }
        if i < count { body(i, count - i) }
    }

    /// out[i] = f(x[i]) over `count` elements, serially (callers parallelise around it).
    @inline(__always)
    static func map(_ count: Int, _ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
                    _ f: (Float8) -> Float8) {
        chunks(count) { i, n in
            if n == lanes { store(f(load(x + i)), out + i) } else { store(f(load(x + i, count: n)), out + i, count: n) }
        }
    }

    /// out[i] = f(a[i], b[i]) over `count` elements, serially.
    @inline(__always)
    static func map(_ count: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                    _ out: UnsafeMutablePointer<Float>, _ f: (Float8, Float8) -> Float8) {
        chunks(count) { i, n in
            if n == lanes {
                store(f(load(a + i), load(b + i)), out + i)
            } else {
                store(f(load(a + i, count: n), load(b + i, count: n)), out + i, count: n)
            }
        }
    }

    /// Elementwise kernel over a whole tensor, split across cores on 8-aligned boundaries.
    @inline(__always)
    static func parallelMap(_ count: Int, _ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
                            _ f: (Float8) -> Float8) {
        let chunkCount = (count + lanes - 1) / lanes
        Parallel.forRange(chunkCount, grain: 2048) { r in
            let lo = r.lowerBound * lanes, hi = min(count, r.upperBound * lanes)
            map(hi - lo, x + lo, out + lo, f)
        }
    }

    @inline(__always)
    static func parallelMap(_ count: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                            _ out: UnsafeMutablePointer<Float>, _ f: (Float8, Float8) -> Float8) {
        let chunkCount = (count + lanes - 1) / lanes
        Parallel.forRange(chunkCount, grain: 2048) { r in
            let lo = r.lowerBound * lanes, hi = min(count, r.upperBound * lanes)
            map(hi - lo, a + lo, b + lo, out + lo, f)
        }
    }

    /// Two sums Σ term(i).0 and Σ term(i).1 over `count` elements. Lanes accumulate in Float
    /// within fixed blocks of 256 elements, blocks in Double: accurate and independent of how
    /// the caller splits work across threads. `term(i, n)` gets the chunk start and length;
    /// lanes ≥ n of a partial chunk are discarded here.
    @inline(__always)
    static func sums(_ count: Int, _ term: (Int, Int) -> (Float8, Float8)) -> (Double, Double) {
        let block = 256
        var total0 = 0.0, total1 = 0.0
        var start = 0
        while start < count {
            let end = min(count, start + block)
            var a = Float8(), b = Float8()
            var i = start
            while i + lanes <= end {
                let (x, y) = term(i, lanes)
                a += x; b += y
                i += lanes
            }
            if i < end {
                let (x, y) = term(i, end - i)
                a += zeroingTail(x, count: end - i); b += zeroingTail(y, count: end - i)
            }
            total0 += Double(a.sum()); total1 += Double(b.sum())
            start = end
        }
        return (total0, total1)
    }

    /// Mean and biased variance of `count` contiguous floats, in Double.
    /// Two passes (mean, then squared deviations) so large means do not cancel the variance.
    @inline(__always)
    static func meanAndVariance(_ p: UnsafePointer<Float>, _ count: Int) -> (mean: Double, variance: Double) {
        let (s, _) = sums(count) { i, n in
            (n == lanes ? load(p + i) : load(p + i, count: n), Float8())
        }
        let mean = s / Double(count)
        let m = Float8(repeating: Float(mean))
        // Deviations from the rounded mean; the first sum corrects for that rounding.
        let (d, d2) = sums(count) { i, n in
            let v = (n == lanes ? load(p + i) : load(p + i, count: n)) - m
            return (v, v * v)
        }
        let dm = d / Double(count)
        return (Double(Float(mean)) + dm, max(0, d2 / Double(count) - dm * dm))
    }
}

/// A Double mean split into two Floats, so x − mean keeps its precision when |mean| ≫ σ
/// (x·(1/σ) − mean/σ would cancel catastrophically there).
struct SplitMean {
    let hi: Float8, lo: Float8

    @inline(__always)
    init(_ mean: Double) {
        let h = Float(mean)
        hi = Float8(repeating: h)
        lo = Float8(repeating: Float(mean - Double(h)))
    }

    @inline(__always)
    func centered(_ x: Float8) -> Float8 { (x - hi) - lo }
}
