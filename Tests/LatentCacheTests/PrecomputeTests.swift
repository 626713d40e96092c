import Checkpoint
import Data
import Foundation
@testable import LatentCache
import Models
import Tensor
import XCTest

final class PrecomputeTests: XCTestCase {
    /// The encoder's posterior for the given images, computed directly.
    func encoderOutput(_ fixtures: CacheFixtures, split: Int, positions: [Int]) throws -> (mean: [Float], logVariance: [Float]) {
        let model = try FirstStageModel.load(from: fixtures.autoencoderURL)
        model.module.eval()
        guard case .kl(let kl) = model else { fatalError("fixture is KL") }
        let dataset = try fixtures.splits()[split].dataset
        let (images, _) = try dataset.batch(positions)
        return withoutGrad {
            let p = kl.encode(images)
            return (p.mean.scalars, p.logVariance.scalars)
        }
    }

    func testRoundTripMatchesTheEncoderExactlyInFP32AndWithinRoundingInFP16() throws {
        let fixtures = try CacheFixtures()
        for dtype in [LatentDType.float32, .float16] {
            let dir = fixtures.directory("cache-\(dtype.rawValue)")
            try fixtures.precompute(into: dir, dtype: dtype)
            for (s, split) in ["train", "test"].enumerated() {
                let reader = try LatentCacheReader(directory: dir, split: split, globalBatchSize: 1, seed: 0)
                let all = Array(0..<reader.sampleCount)
                let batch = try reader.batch(positions: all)
                // The same batches the precompute used (4 images, starting at each shard's start).
                var mean: [Float] = [], logVariance: [Float] = []
                for shardStart in stride(from: 0, to: all.count, by: 5) {
                    for start in stride(from: shardStart, to: min(shardStart + 5, all.count), by: 4) {
                        let out = try encoderOutput(fixtures, split: s, positions: Array(start..<min(start + 4, shardStart + 5, all.count)))
                        mean += out.mean
                        logVariance += out.logVariance
                    }
                }
                XCTAssertEqual(batch.latents.shape, [all.count, 3, 8, 8])
                XCTAssertEqual(batch.indices, all)
                XCTAssertEqual(batch.labels, try fixtures.splits()[s].dataset.batch(all).labels)
                let round: (Float) -> Float = dtype == .float32 ? { $0 } : { Float(Float16($0)) }
                XCTAssertEqual(batch.latents.scalars, mean.map(round), "\(split) \(dtype) mean")
                XCTAssertEqual(batch.logVariance!.scalars, logVariance.map(round), "\(split) \(dtype) logvar")
            }
        }
    }

    func testManifestDescribesTheCache() throws {
        let fixtures = try CacheFixtures()
        let dir = fixtures.directory("cache")
        try fixtures.precompute(into: dir)
        let m = try LatentCacheManifest.read(from: dir)
        XCTAssertEqual(m.formatVersion, 1)
        XCTAssertEqual(m.latentShape, [3, 8, 8])
        XCTAssertEqual(m.dtype, .float16)
        XCTAssertEqual(m.stored, .meanAndLogVariance)
        XCTAssertNil(m.scaleFactor)
        XCTAssertEqual(m.shards(of: "train").map(\.file), (0..<5).map { String(format: "train-%06d.shard", $0) })
        XCTAssertEqual(m.shards(of: "train").map(\.sampleCount), [5, 5, 5, 5, 2])
        XCTAssertEqual(m.shards(of: "test").map(\.firstSample), [0, 5])
        XCTAssertEqual(m.splits.map(\.sampleCount), [22, 9])
        XCTAssertEqual(m.splits[0].dataset, try ImageFolder(root: fixtures.trainImages, channels: 1, resolution: 16, fit: .pad).identity)
        let weights = try Data(contentsOf: fixtures.autoencoderURL)
        var h = XXH64()
        h.update(weights)
        h.update(Data(try AutoencoderFingerprint.configJSON(fixtures.config).utf8))
        XCTAssertEqual(m.autoencoder.fingerprint, XXH64.hexString(h.digest()))
        for shard in m.shards {
            let bytes = try Data(contentsOf: dir.appendingPathComponent(shard.file))
            XCTAssertEqual(bytes.count, shard.bytes)
            XCTAssertEqual(XXH64.hexString(XXH64.hash(bytes)), shard.xxh64)
        }
        let text = String(decoding: try Data(contentsOf: dir.appendingPathComponent("manifest.json")), as: UTF8.self)
        XCTAssertTrue(text.contains("\"scale_factor\" : null"), text)
        // Recording the scale factor keeps everything else.
        try m.settingScaleFactor(0.18215).write(to: dir)
        XCTAssertEqual(try LatentCacheManifest.read(from: dir).scaleFactor, 0.18215)
        XCTAssertEqual(try LatentCacheManifest.read(from: dir).shards, m.shards)
    }

    func testKilledRunResumesToTheSameBytesAsOneRun() throws {
        let fixtures = try CacheFixtures()
        let once = fixtures.directory("once"), resumed = fixtures.directory("resumed")
        try fixtures.precompute(into: once)

        assertThrows(["stopped after 3 shard"]) { try fixtures.precompute(into: resumed, stopAfter: 3) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: resumed.appendingPathComponent("manifest.json").path))
        // What a kill -9 mid-shard leaves: a torn temporary file, and a shard of an earlier
        // crash that was renamed but whose sidecar never was (here: truncated, to be sure).
        let next = resumed.appendingPathComponent("train-000003.shard")
        try Data(try Data(contentsOf: once.appendingPathComponent("train-000003.shard")).prefix(50)).write(to: next)
        try Data([1, 2, 3]).write(to: resumed.appendingPathComponent(".train-000004.shard.tmp-999-abc"))
        // A complete shard whose bytes were damaged after its sidecar was written.
        var damaged = try Data(contentsOf: resumed.appendingPathComponent("train-000001.shard"))
        damaged[damaged.count / 2] ^= 0xFF
        try damaged.write(to: resumed.appendingPathComponent("train-000001.shard"))

        let report = try fixtures.precompute(into: resumed)
        XCTAssertEqual(report.shardsSkipped, ["train-000000.shard", "train-000002.shard"])
        XCTAssertEqual(report.shardsWritten, ["train-000001.shard", "train-000003.shard", "train-000004.shard", "test-000000.shard", "test-000001.shard"])
        let a = try CacheFixtures.files(in: once), b = try CacheFixtures.files(in: resumed)
        XCTAssertEqual(a.keys.sorted(), b.keys.sorted())
        for (name, bytes) in a { XCTAssertEqual(bytes, b[name], "\(name) differs") }

        // A rerun of a complete cache rewrites nothing and changes nothing.
        let again = try fixtures.precompute(into: resumed)
        XCTAssertEqual(again.shardsWritten, [])
        XCTAssertEqual(try CacheFixtures.files(in: resumed), a)
    }

    func testRerunWithAnotherEncoderBatchSizeRewritesEveryShard() throws {
        let fixtures = try CacheFixtures()
        let dir = fixtures.directory("cache")
        try fixtures.precompute(into: dir)
        let report = try fixtures.precompute(into: dir, batchSize: 3)
        XCTAssertEqual(report.shardsSkipped, [])
        XCTAssertEqual(report.shardsWritten.count, 7)
        XCTAssertEqual(try LatentCacheManifest.read(from: dir).encoderBatchSize, 3)
    }

    func testSmallerShardSizeOnRerunRemovesShardsTheManifestNoLongerNames() throws {
        let fixtures = try CacheFixtures()
        let dir = fixtures.directory("cache")
        try fixtures.precompute(into: dir, shardSize: 3)
        try fixtures.precompute(into: dir, shardSize: 10)
        let fresh = fixtures.directory("fresh")
        try fixtures.precompute(into: fresh, shardSize: 10)
        XCTAssertEqual(try CacheFixtures.files(in: dir), try CacheFixtures.files(in: fresh))
    }

    func testCacheOfAnotherAutoencoderOrDatasetIsRefusedByName() throws {
        let fixtures = try CacheFixtures()
        let dir = fixtures.directory("cache")
        try fixtures.precompute(into: dir)
        let fingerprint = try LatentCacheManifest.read(from: dir).autoencoder.fingerprint
        let other = fixtures.root.appendingPathComponent("other.safetensors")
        try CacheFixtures.writeAutoencoder(fixtures.config, seed: 99, to: other)
        assertThrows(["cache \(dir.path) was made with autoencoder fingerprint \(fingerprint), this run uses"]) {
            try fixtures.precompute(into: dir, autoencoder: other)
        }
        assertThrows(["was made from dataset", "[:10]"]) { try fixtures.precompute(into: dir, trainLimit: 10) }
        // An interrupted cache (sidecars, no manifest) is protected the same way.
        let partial = fixtures.directory("partial")
        assertThrows(["stopped"]) { try fixtures.precompute(into: partial, stopAfter: 1) }
        assertThrows(["was made with autoencoder fingerprint"]) { try fixtures.precompute(into: partial, autoencoder: other) }
        // The reader checks on request.
        let reader = try LatentCacheReader(directory: dir, globalBatchSize: 2, seed: 0)
        XCTAssertNoThrow(try reader.validate(autoencoderFingerprint: fingerprint, datasetIdentity: reader.manifest.splits[0].dataset))
        assertThrows(["fingerprint \(fingerprint), this run uses 0123"]) { try reader.validate(autoencoderFingerprint: "0123") }
        assertThrows(["was made from dataset"]) { try reader.validate(datasetIdentity: "fashion-mnist/train/60000") }
    }

    func testVQCacheStoresThePreQuantizationLatent() throws {
        let fixtures = try CacheFixtures(regularizer: .vq)
        let dir = fixtures.directory("cache")
        try fixtures.precompute(into: dir, shardSize: 30, dtype: .float32)
        let reader = try LatentCacheReader(directory: dir, globalBatchSize: 1, seed: 0)
        XCTAssertEqual(reader.manifest.stored, .latent)
        let batch = try reader.batch(positions: [0, 1, 2, 3])
        XCTAssertNil(batch.logVariance)
        let model = try FirstStageModel.load(from: fixtures.autoencoderURL)
        model.module.eval()
        guard case .vq(let vq) = model else { return XCTFail("expected VQ") }
        let expected = withoutGrad { vq.encode(try! fixtures.splits()[0].dataset.batch([0, 1, 2, 3]).images) }
        XCTAssertEqual(batch.latents.scalars, expected.scalars)
        var g = RandomGenerator(seed: 1)
        XCTAssertEqual(batch.sample(generator: &g).scalars, expected.scalars)
    }
}
