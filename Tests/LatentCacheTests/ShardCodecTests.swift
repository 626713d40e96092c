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
}
