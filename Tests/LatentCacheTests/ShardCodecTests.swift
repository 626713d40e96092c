import Checkpoint
import Foundation
@testable import LatentCache
import Tensor
import XCTest

final class ShardCodecTests: XCTestCase {
    func randomShard(count: Int, shape: [Int] = [3, 4, 4], captions: [String?]? = nil, seed: UInt64 = 3) -> LatentShard {
        var g = RandomGenerator(seed: seed)
        let size = shape.reduce(1, *)
        let fields = (0..<2).map { _ in (0..<(count * size)).map { _ in g.nextNormal() * 3 } }
        return LatentShard(firstSample: 40, latentShape: shape, stored: .meanAndLogVariance,
                           datasetIndices: (0..<count).map { 1000 + $0 }, labels: (0..<count).map { $0 % 3 - 1 },
                           fields: fields, captions: captions)
    }

    func testByteShuffleGroupsBytesBySignificanceAndInverts() {
        let values: [UInt16] = [0x0102, 0x0304, 0x0506]
        var planes = [UInt8](repeating: 0, count: 6), back = [UInt16](repeating: 0, count: 3)
        values.withUnsafeBytes { src in planes.withUnsafeMutableBytes { ByteShuffle.shuffle(src.baseAddress!, into: $0.baseAddress!, count: 3, elementSize: 2) } }
        XCTAssertEqual(planes, [0x02, 0x04, 0x06, 0x01, 0x03, 0x05])   // low bytes, then high bytes (little-endian)
        planes.withUnsafeBytes { src in back.withUnsafeMutableBytes { ByteShuffle.unshuffle(src.baseAddress!, into: $0.baseAddress!, count: 3, elementSize: 2) } }
        XCTAssertEqual(back, values)
    }

    func testFloat32RoundTripIsExact() throws {
        let shard = randomShard(count: 7)
        let bytes = try ShardCodec.encode(shard, dtype: .float32, level: 3)
        XCTAssertEqual(try ShardCodec.decode(bytes, shard: "x"), shard)
    }

    func testFloat16RoundTripIsTheRoundedValueAndCaptionsSurvive() throws {
        let captions: [String?] = ["a grey coat", nil, "", "ünïcødé ✓", nil]
        let shard = randomShard(count: 5, captions: captions)
        let decoded = try ShardCodec.decode(try ShardCodec.encode(shard, dtype: .float16, level: 5), shard: "x")
        XCTAssertEqual(decoded.captions!, captions)
        XCTAssertEqual(decoded.labels, shard.labels)
        XCTAssertEqual(decoded.datasetIndices, shard.datasetIndices)
        for f in 0..<2 {
            XCTAssertEqual(decoded.fields[f], shard.fields[f].map { Float(Float16($0)) })
            for (a, b) in zip(decoded.fields[f], shard.fields[f]) { XCTAssertEqual(a, b, accuracy: abs(b) * 0x1p-11 + 1e-7) }
        }
    }

    func testEncodingIsDeterministicAndNamesTheShardOnDamage() throws {
        let shard = randomShard(count: 6)
        let a = try ShardCodec.encode(shard, dtype: .float16, level: 3)
        XCTAssertEqual(a, try ShardCodec.encode(shard, dtype: .float16, level: 3))
        assertThrows(["train-000001.shard", "truncated"]) { _ = try ShardCodec.decode(Array(a.dropLast(9)), shard: "train-000001.shard") }
        var flipped = a
        flipped[a.count - 20] ^= 0x10
        // The zstd frame checksum catches payload damage even without the manifest's XXH64.
        assertThrows(["train-000001.shard"]) { _ = try ShardCodec.decode(flipped, shard: "train-000001.shard") }
        assertThrows(["train-000001.shard", "magic"]) { _ = try ShardCodec.decode([UInt8](repeating: 0, count: 80), shard: "train-000001.shard") }
    }

    /// A real shard's header with one field replaced (little-endian at `offset`).
    func patched(_ bytes: [UInt8], _ offset: Int, _ value: UInt64, width: Int = 8) -> [UInt8] {
        var out = bytes
        for k in 0..<width { out[offset + k] = UInt8(truncatingIfNeeded: value >> (8 * k)) }
        return out
    }

    /// Sizes in the header are checked against the file's length before anything is sized by
    /// them: each of these trapped (Int conversion, overflow) or allocated terabytes before.
    func testHeaderSizesAreCheckedBeforeAnythingIsAllocated() throws {
        let good = try ShardCodec.encode(randomShard(count: 3), dtype: .float16, level: 3)
        let name = "train-000002.shard"
        assertThrows([name, "sample count 9223372036854775808 is out of range"]) {
            _ = try ShardCodec.decode(patched(good, 16, 1 << 63), shard: name)
        }
        assertThrows([name, "payload size 18446744073709551615 is out of range"]) {
            _ = try ShardCodec.decode(patched(good, 48, .max), shard: name)
        }
        assertThrows([name, "frame"]) { _ = try ShardCodec.decode(patched(good, 56, UInt64(Int.max)), shard: name) }
        // A terabyte payload announced by a frame of a few hundred bytes.
        assertThrows([name, "cannot come from a"]) { _ = try ShardCodec.decode(patched(good, 48, 1 << 40), shard: name) }
        // C·h·w overflows Int; the checks must not trap computing it.
        let wide = patched(patched(patched(good, 32, 0xFFFF_FFFF, width: 4), 36, 0xFFFF_FFFF, width: 4), 40, 0xFFFF_FFFF, width: 4)
        assertThrows([name, "more elements than fit"]) { _ = try ShardCodec.decode(wide, shard: name) }
        // C·h·w fits, C·h·w·N does not.
        let many = patched(patched(good, 16, 1 << 40), 32, 1 << 30, width: 4)
        assertThrows([name, "cannot hold"]) { _ = try ShardCodec.decode(many, shard: name) }
        // Found by FuzzLatentShard: no samples and a shape whose product overflows passed the
        // payload check (0 · anything = 0), then trapped when the decoder multiplied the shape out.
        let empty = patched(good, 16, 0)
        let huge = patched(patched(patched(empty, 32, 1_968_373_764, width: 4), 36, 1_920_234_338, width: 4), 40, 6_778_473, width: 4)
        assertThrows([name, "more elements than fit"]) { _ = try ShardCodec.decode(huge, shard: name) }
        assertThrows([name, "zero dimension"]) { _ = try ShardCodec.decode(patched(good, 36, 0, width: 4), shard: name) }
        XCTAssertEqual(try ShardCodec.decode(good, shard: name).sampleCount, 3)
    }
}
