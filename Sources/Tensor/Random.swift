import Foundation

/// A seedable random generator whose whole state can be saved and restored exactly.
///
/// xoshiro256** (Blackman & Vigna) seeded through SplitMix64. Resume depends on restoring
/// `state`: a generator rebuilt from a saved state continues the same sequence bit for bit.
public struct RandomGenerator: Codable, Equatable, Sendable {
    public var state: [UInt64]

    public init(seed: UInt64) {
        var x = seed
        func splitMix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        state = (0..<4).map { _ in splitMix() }
    }

    /// Restores a saved state (four words, not all zero).
    public init(state: [UInt64]) throws {
        guard state.count == 4, state.contains(where: { $0 != 0 }) else {
            throw RandomGeneratorError.invalidState(state)
        }
        self.state = state
    }

    /// A generator for a sub-stream (a rank, an epoch, a purpose) that does not overlap the
    /// parent's sequence in practice and does not advance the parent.
    public func derived(_ keys: UInt64...) -> RandomGenerator {
        var seed = state[0] ^ 0x6A09_E667_F3BC_C908
        for k in keys { var g = RandomGenerator(seed: seed ^ k); seed = g.next() }
        return RandomGenerator(seed: seed)
    }

    @inline(__always)
    public mutating func next() -> UInt64 {
        let result = rotl(state[1] &* 5, 7) &* 9
        let t = state[1] << 17
        state[2] ^= state[0]
        state[3] ^= state[1]
        state[1] ^= state[2]
        state[0] ^= state[3]
        state[2] ^= t
        state[3] = rotl(state[3], 45)
        return result
    }

    @inline(__always)
    private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// Uniform in [0, 1) with 24 random bits.
    @inline(__always)
    public mutating func nextUniform() -> Float { Float(next() >> 40) * (1.0 / 16_777_216.0) }

    /// Uniform in [0, 1) with 53 random bits.
    @inline(__always)
    public mutating func nextUniformDouble() -> Double { Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0) }

    /// Uniform integer in 0..<bound, without modulo bias.
    public mutating func nextInt(below bound: Int) -> Int {
        precondition(bound > 0, "nextInt(below:) needs a positive bound")
        let b = UInt64(bound)
        let limit = UInt64.max - UInt64.max % b
        while true {
            let x = next()
            if x < limit { return Int(x % b) }
        }
    }

    /// A pair of independent standard normal values (Box–Muller on 53-bit uniforms).
    @inline(__always)
    public mutating func nextNormalPair() -> (Float, Float) {
        let u1 = 1 - nextUniformDouble()  // (0, 1]: log is finite
        let u2 = nextUniformDouble()
        let r = (-2 * Foundation.log(u1)).squareRoot()
        let theta = 2 * Double.pi * u2
        return (Float(r * Foundation.cos(theta)), Float(r * Foundation.sin(theta)))
    }

    /// One standard normal value (uses a whole pair, so the state stays simple to save).
    public mutating func nextNormal() -> Float { nextNormalPair().0 }

    /// Fills a buffer with N(mean, std²) values.
    public mutating func fillNormal(_ buffer: UnsafeMutableBufferPointer<Float>, mean: Float = 0, std: Float = 1) {
        var i = 0
        while i < buffer.count {
            let (a, b) = nextNormalPair()
            buffer[i] = mean + std * a
            if i + 1 < buffer.count { buffer[i + 1] = mean + std * b }
            i += 2
        }
    }

    /// Fills a buffer with U[low, high) values.
    public mutating func fillUniform(_ buffer: UnsafeMutableBufferPointer<Float>, low: Float = 0, high: Float = 1) {
        for i in 0..<buffer.count { buffer[i] = low + (high - low) * nextUniform() }
    }

    /// A uniformly random permutation of 0..<n (Fisher–Yates).
    public mutating func permutation(_ n: Int) -> [Int] {
        var p = Array(0..<n)
        if n > 1 {
            for i in stride(from: n - 1, to: 0, by: -1) { p.swapAt(i, nextInt(below: i + 1)) }
        }
        return p
    }
}

public enum RandomGeneratorError: Error, CustomStringConvertible {
    case invalidState([UInt64])
    public var description: String {
        switch self {
        case .invalidState(let s): return "invalid random generator state \(s): expected 4 words, not all zero"
        }
    }
}

extension Tensor {
    /// N(mean, std²) samples.
    public static func randomNormal(_ shape: [Int], mean: Float = 0, std: Float = 1,
                                    generator: inout RandomGenerator) -> Tensor {
        let t = Tensor(uninitialized: shape)
        generator.fillNormal(t.buffer, mean: mean, std: std)
        return t
    }

    /// U[low, high) samples.
    public static func randomUniform(_ shape: [Int], low: Float = 0, high: Float = 1,
                                     generator: inout RandomGenerator) -> Tensor {
        let t = Tensor(uninitialized: shape)
        generator.fillUniform(t.buffer, low: low, high: high)
        return t
    }
}
