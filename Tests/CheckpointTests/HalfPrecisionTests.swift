import XCTest
@testable import Checkpoint

final class HalfPrecisionTests: XCTestCase {
    /// Our bit-level F16 decoder agrees with Swift's Float16 on all 65536 patterns.
    func testFloat16DecodeIsExactForEveryPattern() {
        for raw in 0...0xFFFF {
            let bits = UInt16(raw)
            let ours = HalfPrecision.float(fromFloat16Bits: bits)
            let reference = Float(Float16(bitPattern: bits))
            if reference.isNaN {
                XCTAssertTrue(ours.isNaN, "pattern \(String(raw, radix: 16))")
            } else {
                XCTAssertEqual(ours.bitPattern, reference.bitPattern, "pattern \(String(raw, radix: 16))")
            }
        }
    }

    func testFloat16EncodeRoundsToNearestEven() {
        let cases: [(Float, UInt16)] = [
            (1, 0x3C00), (-2, 0xC000), (65504, 0x7BFF),
            (1 + 0x1p-11, 0x3C00),          // tie between 1 and 1+2⁻¹⁰ → even (1)
            (1 + 3 * 0x1p-11, 0x3C02),      // tie → even (1+2⁻⁹)
            (1 + 0x1p-11 + 0x1p-20, 0x3C01), // just above the tie → up
            (65519, 0x7BFF), (65520, 0x7C00), // largest finite vs overflow to infinity
            (0x1p-24, 0x0001), (0x1p-25, 0x0000), (3 * 0x1p-25, 0x0002), // subnormal ties
            (-0.0, 0x8000), (.infinity, 0x7C00), (-.infinity, 0xFC00),
        ]
        for (value, expected) in cases {
            XCTAssertEqual(HalfPrecision.float16Bits(from: value), expected, "\(value)")
        }
        XCTAssertTrue(HalfPrecision.float(fromFloat16Bits: HalfPrecision.float16Bits(from: .nan)).isNaN)
    }

    func testBFloat16RoundTripsEveryFinitePattern() {
        for raw in 0...0xFFFF {
            let bits = UInt16(raw)
            let value = HalfPrecision.float(fromBFloat16Bits: bits)
            if value.isNaN {
                XCTAssertTrue(HalfPrecision.float(fromBFloat16Bits: HalfPrecision.bfloat16Bits(from: value)).isNaN)
            } else {
                XCTAssertEqual(HalfPrecision.bfloat16Bits(from: value), bits, "pattern \(String(raw, radix: 16))")
            }
        }
    }

    func testBFloat16EncodeRoundsToNearestEven() {
        let cases: [(Float, UInt16)] = [
            (1, 0x3F80),
            (1 + 0x1p-8, 0x3F80),           // tie → even
            (1 + 3 * 0x1p-8, 0x3F82),       // tie → even, upwards
            (1 + 0x1p-8 + 0x1p-20, 0x3F81), // above the tie → up
            (Float.greatestFiniteMagnitude, 0x7F80), // rounds up to infinity, like torch
            (-0.0, 0x8000),
        ]
        for (value, expected) in cases {
            XCTAssertEqual(HalfPrecision.bfloat16Bits(from: value), expected, "\(value)")
        }
        // Signalling NaN whose payload lives only in the low half must not become infinity.
        let nan = Float(bitPattern: 0x7F80_0001)
        XCTAssertTrue(HalfPrecision.float(fromBFloat16Bits: HalfPrecision.bfloat16Bits(from: nan)).isNaN)
    }

    /// Bulk codecs on an odd byte offset (tensors inside files are not always aligned), over a
    /// count large enough to be split across threads.
    func testBulkCodecsHandleUnalignedBuffers() {
        let count = 3 * HalfPrecision.parallelGrain + 5
        let source = (0..<count).map { Float($0 % 2000) * 0.37 - 300 }
        let bytes = UnsafeMutableRawPointer.allocate(byteCount: 2 * count + 1, alignment: 8)
        defer { bytes.deallocate() }
        var decoded = [Float](repeating: 0, count: count)

        HalfPrecision.encodeFloat16(source, into: bytes + 1, count: count)
        HalfPrecision.decodeFloat16(bytes + 1, into: &decoded, count: count)
        for i in stride(from: 0, to: count, by: 997) {
            XCTAssertEqual(decoded[i], Float(Float16(source[i])), "F16 element \(i)")
        }
        HalfPrecision.encodeBFloat16(source, into: bytes + 1, count: count)
        HalfPrecision.decodeBFloat16(bytes + 1, into: &decoded, count: count)
        for i in stride(from: 0, to: count, by: 997) {
            XCTAssertEqual(decoded[i], HalfPrecision.float(fromBFloat16Bits: HalfPrecision.bfloat16Bits(from: source[i])))
            XCTAssertLessThanOrEqual(abs(decoded[i] - source[i]), abs(source[i]) * 0x1p-8, "BF16 element \(i)")
        }
    }
}
