import Foundation
@testable import LatentCache
import Tensor
import XCTest

final class ReaderTests: XCTestCase {
    func testWindowedOrderIsAPermutationDeterministicPerSeedAndEpoch() throws {
        let counts = [5, 5, 5, 5, 5, 5, 3]
        let s = try ShardWindowSampler(shardCounts: counts, globalBatchSize: 4, seed: 11, window: 2)
        let e0 = s.order(epoch: 0), e1 = s.order(epoch: 1)
        XCTAssertEqual(e0.sorted(), Array(0..<33))
        XCTAssertEqual(e1.sorted(), Array(0..<33))
        XCTAssertNotEqual(e0, e1)
        XCTAssertEqual(e0, try ShardWindowSampler(shardCounts: counts, globalBatchSize: 4, seed: 11, window: 2).order(epoch: 0))
        XCTAssertNotEqual(e0, try ShardWindowSampler(shardCounts: counts, globalBatchSize: 4, seed: 12, window: 2).order(epoch: 0))
        // Each run of 10 consecutive positions (one window of two 5-sample shards) comes from
        // just two shards: that is what bounds the reader's memory.
        let even = try ShardWindowSampler(shardCounts: [5, 5, 5, 5, 5, 5, 5], globalBatchSize: 4, seed: 11, window: 2).order(epoch: 0)
        for window in stride(from: 0, to: 30, by: 10) {
            XCTAssertEqual(Set(even[window..<window + 10].map { $0 / 5 }).count, 2)
        }
        XCTAssertFalse(even[0..<10].elementsEqual(even[0..<10].sorted()), "samples within a window are shuffled")
        let plain = try ShardWindowSampler(shardCounts: counts, globalBatchSize: 4, seed: 11, shuffle: false)
        XCTAssertEqual(plain.order(epoch: 3), Array(0..<33))
    }

    func testRanksTakeDisjointSlicesThatConcatenateToTheGlobalBatch() throws {
        let counts = [6, 6, 6, 4]
        var one = try ShardWindowSampler(shardCounts: counts, globalBatchSize: 6, seed: 5, window: 2)
        var r0 = try ShardWindowSampler(shardCounts: counts, globalBatchSize: 6, worldSize: 2, rank: 0, seed: 5, window: 2)
        var r1 = try ShardWindowSampler(shardCounts: counts, globalBatchSize: 6, worldSize: 2, rank: 1, seed: 5, window: 2)
        for _ in 0..<(2 * one.batchesPerEpoch + 1) {
            let a = r0.nextBatch(), b = r1.nextBatch()
            XCTAssertTrue(Set(a).isDisjoint(with: b))
            XCTAssertEqual(a + b, one.nextBatch())
        }
        assertThrows(["not divisible by world size 4"]) {
            _ = try ShardWindowSampler(shardCounts: counts, globalBatchSize: 6, worldSize: 4, rank: 0, seed: 5)
        }
    }

    func testReaderResumesMidEpochFromASavedCursorAndStreamsWithBoundedMemory() throws {
        let fixtures = try CacheFixtures(trainCount: 40)
        let dir = fixtures.directory("cache")
        try fixtures.precompute(into: dir, shardSize: 4)   // 10 train shards
        let reader = try LatentCacheReader(directory: dir, globalBatchSize: 6, seed: 3, window: 2, cacheCapacity: 4)
        var seen: [[Int]] = []
        for _ in 0..<4 { seen.append(try reader.nextBatch().indices) }
        let saved = try JSONEncoder().encode(reader.cursor)
        var rest: [[Float]] = []
        var mostResident = 0
        for _ in 0..<5 {   // crosses into epoch 1 (6 batches/epoch)
            rest.append(try reader.nextBatch().latents.scalars)
            mostResident = max(mostResident, reader.residentShardCount)
        }
        XCTAssertEqual(reader.cursor, .init(epoch: 1, batchInEpoch: 3))
        XCTAssertLessThanOrEqual(reader.shardLoads, 30)
        // Memory is bounded by eviction: at most cacheCapacity of the 10 shards are ever held,
        // though more than that many were read.
        XCTAssertLessThanOrEqual(mostResident, 4)
        XCTAssertGreaterThan(reader.shardLoads, 4)

        let cursor = try JSONDecoder().decode(ShardWindowSampler.Cursor.self, from: saved)
        let resumed = try LatentCacheReader(directory: dir, globalBatchSize: 6, seed: 3, window: 2, cursor: cursor, cacheCapacity: 4)
        for expected in rest { XCTAssertEqual(try resumed.nextBatch().latents.scalars, expected) }

        // Epoch 0 never repeats a sample, and the batch matches direct lookup.
        let fresh = try LatentCacheReader(directory: dir, globalBatchSize: 6, seed: 3, window: 2)
        var epoch: [Int] = []
        for _ in 0..<fresh.sampler.batchesPerEpoch {
            let positions = fresh.sampler.globalBatch(at: fresh.cursor)
            let batch = try fresh.nextBatch()
            XCTAssertEqual(batch.latents.scalars, try fresh.batch(positions: positions).latents.scalars)
            epoch += batch.indices
        }
        XCTAssertEqual(Set(epoch).count, 36)
        XCTAssertEqual(seen.flatMap { $0 }, Array(epoch.prefix(24)))
    }

    func testTwoRankReadersTogetherReadTheOneRankBatch() throws {
        let fixtures = try CacheFixtures()
        let dir = fixtures.directory("cache")
        try fixtures.precompute(into: dir)
        let one = try LatentCacheReader(directory: dir, globalBatchSize: 4, seed: 9, window: 2)
        let ranks = try (0..<2).map { try LatentCacheReader(directory: dir, globalBatchSize: 4, worldSize: 2, rank: $0, seed: 9, window: 2) }
        for _ in 0..<7 {
            let whole = try one.nextBatch()
            let parts = try ranks.map { try $0.nextBatch() }
            XCTAssertEqual(parts[0].indices + parts[1].indices, whole.indices)
            XCTAssertEqual(parts[0].logVariance!.scalars + parts[1].logVariance!.scalars, whole.logVariance!.scalars)
        }
    }

    func testPosteriorSampleHasTheStoredMeanAndVariance() throws {
        let n = 20_000
        let mean = Tensor(repeating: 1.5, shape: [n, 1, 1, 1]), logVariance = Tensor(repeating: log(0.25), shape: [n, 1, 1, 1])
        let batch = LatentBatch(latents: mean, logVariance: logVariance, labels: [], indices: [], captions: nil)
        var g = RandomGenerator(seed: 4)
        let z = batch.sample(generator: &g).scalars
        let m = z.reduce(0, +) / Float(n)
        let v = z.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Float(n)
        XCTAssertEqual(m, 1.5, accuracy: 0.02)
        XCTAssertEqual(v, 0.25, accuracy: 0.02)
        XCTAssertNotEqual(z, batch.sample(generator: &g).scalars, "every call draws a fresh z")
    }
}
