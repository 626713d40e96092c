import Tensor

/// Conversions between Float32 and the 16-bit float formats of checkpoints and caches:
/// IEEE binary16 ("F16") and bfloat16 ("BF16", the top half of a Float32).
///
/// Float32 → 16 bit rounds to nearest, ties to even (the IEEE default, and what PyTorch's
/// `.half()` / `.bfloat16()` do); values beyond the range become ±infinity and NaN stays NaN.
/// The bulk functions read and write little-endian bytes at any alignment, because tensors
/// inside a file need not be aligned to their element size.
public enum HalfPrecision {
    /// Work below this many elements per thread is not worth a thread hop.
    static let parallelGrain = 1 << 16

    @inline(__always)
    public static func float(fromFloat16Bits h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exponent = UInt32(h >> 10) & 0x1F
        let mantissa = UInt32(h & 0x3FF)
        if exponent == 0x1F {   // infinity or NaN (payload kept)
            return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        }
        if exponent == 0 {      // zero or subnormal: mantissa × 2⁻²⁴, exact in Float32
            let magnitude = Float(mantissa) * 0x1p-24
            return Float(bitPattern: sign | magnitude.bitPattern)
        }
        return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))
    }

    @inline(__always)
    public static func float16Bits(from x: Float) -> UInt16 {
        Float16(x).bitPattern   // Swift's conversion rounds to nearest even
    }

    @inline(__always)
    public static func float(fromBFloat16Bits b: UInt16) -> Float {
        Float(bitPattern: UInt32(b) << 16)
    }

    @inline(__always)
    public static func bfloat16Bits(from x: Float) -> UInt16 {
        let bits = x.bitPattern
        if x.isNaN { return UInt16(truncatingIfNeeded: bits >> 16) | 0x0040 }   // stay a (quiet) NaN
        // Adding 0x7FFF plus the lowest kept bit rounds to nearest, ties to even; a carry into
        // the exponent is the correct result (up to infinity).
        let rounded = bits &+ 0x7FFF &+ ((bits >> 16) & 1)
        return UInt16(truncatingIfNeeded: rounded >> 16)
    }

    /// Decodes `count` little-endian binary16 values at `source` into `destination`.
    public static func decodeFloat16(_ source: UnsafeRawPointer, into destination: UnsafeMutablePointer<Float>, count: Int) {
        Parallel.forRange(count, grain: parallelGrain) { range in
            for i in range {
                let bits = UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                destination[i] = float(fromFloat16Bits: bits)
            }
        }
    }

    /// Decodes `count` little-endian bfloat16 values at `source` into `destination`.
    public static func decodeBFloat16(_ source: UnsafeRawPointer, into destination: UnsafeMutablePointer<Float>, count: Int) {
        Parallel.forRange(count, grain: parallelGrain) { range in
            for i in range {
                let bits = UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                destination[i] = float(fromBFloat16Bits: bits)
            }
        }
    }

    /// Encodes `count` floats as little-endian binary16 at `destination`.
    public static func encodeFloat16(_ source: UnsafePointer<Float>, into destination: UnsafeMutableRawPointer, count: Int) {
        Parallel.forRange(count, grain: parallelGrain) { range in
            for i in range {
                destination.storeBytes(of: float16Bits(from: source[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self)
            }
        }
    }

    /// Encodes `count` floats as little-endian bfloat16 at `destination`.
    public static func encodeBFloat16(_ source: UnsafePointer<Float>, into destination: UnsafeMutableRawPointer, count: Int) {
        Parallel.forRange(count, grain: parallelGrain) { range in
            for i in range {
                destination.storeBytes(of: bfloat16Bits(from: source[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self)
            }
        }
    }
}
