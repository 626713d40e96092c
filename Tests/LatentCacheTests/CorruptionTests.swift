import Foundation
@testable import LatentCache
import XCTest

/// Every kind of damage is reported naming the shard, by the reader and by `verify`.
final class CorruptionTests: XCTestCase {
    var fixtures: CacheFixtures!
    var dir: URL!

    override func setUpWithError() throws {
        fixtures = try CacheFixtures()
        dir = fixtures.directory("cache")
        try fixtures.precompute(into: dir)
        XCTAssertTrue(LatentCacheVerifier.verify(directory: dir).isValid)
    }

    /// Reads every sample of the train split.
    func readAll() throws {
        let reader = try LatentCacheReader(directory: dir, globalBatchSize: 2, seed: 1)
        _ = try reader.batch(positions: Array(0..<reader.sampleCount))
    }

    func assertDetected(_ shard: String, _ fragment: String, file: StaticString = #filePath, line: UInt = #line) {
        assertThrows([shard, fragment], file: file, line: line) { try readAll() }
        let report = LatentCacheVerifier.verify(directory: dir)
        XCTAssertFalse(report.isValid, file: file, line: line)
        XCTAssertEqual(report.problems.map(\.file), [shard], file: file, line: line)
        XCTAssertTrue(report.problems.first?.message.contains(fragment) ?? false, "\(report.problems)", file: file, line: line)
    }

    func testTruncatedShard() throws {
        let url = dir.appendingPathComponent("train-000002.shard")
        let bytes = try Data(contentsOf: url)
        try bytes.prefix(bytes.count - 7).write(to: url)
        assertDetected("train-000002.shard", "truncated")
    }

    func testFlippedByte() throws {
        let url = dir.appendingPathComponent("train-000001.shard")
        var bytes = try Data(contentsOf: url)
        bytes[bytes.count - 30] ^= 0x01
        try bytes.write(to: url)
        assertDetected("train-000001.shard", "corrupt: XXH64")
    }

    func testMissingShard() throws {
        try FileManager.default.removeItem(at: dir.appendingPathComponent("train-000004.shard"))
        assertDetected("train-000004.shard", "missing")
    }

    func testManifestOfAnotherVersion() throws {
        let url = dir.appendingPathComponent("manifest.json")
        let text = String(decoding: try Data(contentsOf: url), as: UTF8.self)
        try Data(text.replacingOccurrences(of: "\"format_version\" : 1", with: "\"format_version\" : 2").utf8).write(to: url)
        assertThrows(["manifest.json", "format_version 2", "reads version 1"]) { try readAll() }
        let report = LatentCacheVerifier.verify(directory: dir)
        XCTAssertEqual(report.problems.map(\.file), ["manifest.json"])
        XCTAssertTrue(report.problems[0].message.contains("format_version 2"))
    }

    /// Readers size every batch by the manifest's C·h·w: a negative or overflowing shape used to
    /// trap there (or allocate a negative count); it is refused when the manifest is read.
    func testManifestLatentShapeThatCannotSizeABatch() throws {
        let good = try LatentCacheManifest.read(from: dir)
        for shape in [[-1, 4, 4], [0, 4, 4], [1 << 40, 1 << 40, 1], []] {
            var m = good
            m.latentShape = shape
            try m.write(to: dir)
            assertThrows(["manifest.json", "latent_shape \(shape)", "positive dimensions"]) { try readAll() }
        }
    }

    func testManifestCountThatDisagreesWithTheShardHeader() throws {
        // A manifest edited (or written by a buggy tool) to claim a different count.
        var m = try LatentCacheManifest.read(from: dir)
        m.shards[0].sampleCount = 4
        m.shards[1].firstSample = 4
        try m.write(to: dir)
        let report = LatentCacheVerifier.verify(directory: dir)
        XCTAssertTrue(report.problems.contains { $0.file == "train-000000.shard" && $0.message.contains("holds 5 samples") }, "\(report.problems)")
    }
}
