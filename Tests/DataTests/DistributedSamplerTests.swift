import Foundation
import XCTest
@testable import Data
import Tensor

final class DistributedSamplerTests: XCTestCase {
    typealias Cursor = DistributedSampler.Cursor

    func samplers(count: Int, global: Int, world: Int, seed: UInt64 = 7, shuffle: Bool = true,
                  dropLast: Bool = true, cursor: Cursor = Cursor()) throws -> [DistributedSampler] {
        try (0..<world).map {
            try DistributedSampler(datasetCount: count, globalBatchSize: global, worldSize: world, rank: $0,
                                   seed: seed, shuffle: shuffle, dropLast: dropLast, cursor: cursor)
        }
    }

    func testSameSeedAndEpochGiveTheSameOrderAndOthersDiffer() throws {
        let a = try DistributedSampler(datasetCount: 100, globalBatchSize: 10, seed: 3)
        let b = try DistributedSampler(datasetCount: 100, globalBatchSize: 10, seed: 3)
        let c = try DistributedSampler(datasetCount: 100, globalBatchSize: 10, seed: 4)
        XCTAssertEqual(a.order(epoch: 0), b.order(epoch: 0))
        XCTAssertEqual(a.order(epoch: 5), b.order(epoch: 5))
        XCTAssertNotEqual(a.order(epoch: 0), a.order(epoch: 1), "epochs must be reshuffled")
        XCTAssertNotEqual(a.order(epoch: 0), c.order(epoch: 0), "the seed must matter")
        XCTAssertEqual(a.order(epoch: 2).sorted(), Array(0..<100), "an epoch is a permutation")
        XCTAssertNotEqual(a.order(epoch: 0), Array(0..<100))
        // The documented recipe, so other code (or another language) can reproduce the order.
        var g = RandomGenerator(seed: 3).derived(2)
        XCTAssertEqual(a.order(epoch: 2), g.permutation(100))
        // Without shuffling, every epoch is index order.
        let plain = try DistributedSampler(datasetCount: 20, globalBatchSize: 5, seed: 3, shuffle: false)
        XCTAssertEqual(plain.order(epoch: 4), Array(0..<20))
        // Two samplers stepping independently produce identical streams.
        var x = a, y = b
        for _ in 0..<25 { XCTAssertEqual(x.nextBatch(), y.nextBatch()) }
    }

    func testRanksAreDisjointAndTheirUnionInRankOrderIsTheSingleProcessBatch() throws {
        let count = 103, global = 12
        for world in [1, 2, 3, 4, 6] {
            var ranks = try samplers(count: count, global: global, world: world)
            var single = try DistributedSampler(datasetCount: count, globalBatchSize: global, seed: 7)
            XCTAssertEqual(ranks[0].batchesPerEpoch, 8)
            for step in 0..<20 {  // crosses two epoch boundaries
                let local = ranks.indices.map { ranks[$0].nextBatch() }
                XCTAssertTrue(local.allSatisfy { $0.count == global / world })
                let union = local.flatMap { $0 }
                XCTAssertEqual(Set(union).count, global, "world \(world) step \(step): ranks overlap")
                XCTAssertEqual(union, single.nextBatch(), "world \(world) step \(step): union differs from one process")
            }
            XCTAssertTrue(ranks.allSatisfy { $0.cursor == single.cursor })
        }
    }

    func testEpochCoversEachSampleAtMostOnceAndTheCursorRollsOver() throws {
        // 50 samples, global batch 8: 6 batches per epoch, 2 samples dropped (different ones each epoch).
        var rank1 = try DistributedSampler(datasetCount: 50, globalBatchSize: 8, worldSize: 2, rank: 1, seed: 11)
        var all = try DistributedSampler(datasetCount: 50, globalBatchSize: 8, seed: 11)
        XCTAssertEqual(all.batchesPerEpoch, 6)
        var dropped: [Set<Int>] = []
        for epoch in 0..<2 {
            var seen: [Int] = []
            for b in 0..<6 {
                XCTAssertEqual(all.cursor, Cursor(epoch: epoch, batchInEpoch: b))
                let batch = all.nextBatch()
                XCTAssertEqual(rank1.nextBatch(), Array(batch[4..<8]))
                seen += batch
            }
            XCTAssertEqual(Set(seen).count, 48, "no sample twice within an epoch")
            XCTAssertEqual(seen, Array(all.order(epoch: epoch).prefix(48)))
            dropped.append(Set(0..<50).subtracting(seen))
        }
        XCTAssertEqual(all.cursor, Cursor(epoch: 2, batchInEpoch: 0))
        XCTAssertEqual(rank1.cursor, Cursor(epoch: 2, batchInEpoch: 0))
        XCTAssertNotEqual(dropped[0], dropped[1], "shuffling should drop different samples each epoch")
    }

    func testWithoutDropLastTheLastBatchIsCompletedFromTheEpochStart() throws {
        var ranks = try samplers(count: 10, global: 4, world: 2, shuffle: true, dropLast: false)
        XCTAssertEqual(ranks[0].batchesPerEpoch, 3)
        let order = ranks[0].order(epoch: 0)
        var epoch: [Int] = []
        for _ in 0..<3 { epoch += ranks[0].nextBatch() + ranks[1].nextBatch() }
        XCTAssertEqual(epoch, order + order.prefix(2), "last batch = 2 leftovers + first 2 of the epoch")
        XCTAssertEqual(Set(epoch).count, 10, "every sample is seen in the epoch")
        XCTAssertEqual(ranks[1].cursor, Cursor(epoch: 1, batchInEpoch: 0))
        // An exact fit has nothing to pad.
        let exact = try DistributedSampler(datasetCount: 12, globalBatchSize: 4, seed: 1, dropLast: false)
        XCTAssertEqual(exact.batchesPerEpoch, 3)
    }

    func testResumingFromASavedCursorContinuesExactly() throws {
        var uninterrupted = try DistributedSampler(datasetCount: 37, globalBatchSize: 6, worldSize: 3, rank: 2, seed: 99)
        var reference: [[Int]] = []
        for _ in 0..<20 { reference.append(uninterrupted.nextBatch()) }

        var first = try DistributedSampler(datasetCount: 37, globalBatchSize: 6, worldSize: 3, rank: 2, seed: 99)
        var resumed: [[Int]] = []
        for _ in 0..<9 { resumed.append(first.nextBatch()) }  // stop mid-epoch 1 (6 batches/epoch)
        XCTAssertEqual(first.cursor, Cursor(epoch: 1, batchInEpoch: 3))

        // Through JSON, as a checkpoint stores it: the cursor alone, and the whole sampler.
        let cursorJSON = try JSONEncoder().encode(first.cursor)
        var fromCursor = try DistributedSampler(datasetCount: 37, globalBatchSize: 6, worldSize: 3, rank: 2, seed: 99,
                                                cursor: JSONDecoder().decode(Cursor.self, from: cursorJSON))
        var fromState = try JSONDecoder().decode(DistributedSampler.self, from: JSONEncoder().encode(first))
        XCTAssertEqual(fromState, first)
        var viaState = resumed
        for _ in 9..<20 {
            resumed.append(fromCursor.nextBatch())
            viaState.append(fromState.nextBatch())
        }
        XCTAssertEqual(resumed, reference)
        XCTAssertEqual(viaState, reference)
    }

    func testCursorMeansTheSameDataAtAnotherWorldSize() throws {
        // Resuming a 2-rank run on 4 ranks (same global batch) continues with the same samples.
        let cursor = Cursor(epoch: 3, batchInEpoch: 2)
        let two = try samplers(count: 64, global: 8, world: 2, cursor: cursor)
        let four = try samplers(count: 64, global: 8, world: 4, cursor: cursor)
        XCTAssertEqual(two.flatMap { $0.localBatch(at: cursor) }, four.flatMap { $0.localBatch(at: cursor) })
    }

    func testErrorsExplainTheFix() throws {
        XCTAssertThrowsError(try DistributedSampler(datasetCount: 100, globalBatchSize: 10, worldSize: 4, rank: 0, seed: 1)) {
            XCTAssertEqual($0 as? SamplerError, .batchNotDivisible(globalBatchSize: 10, worldSize: 4))
            XCTAssertEqual("\($0)", "global batch 10 is not divisible by world size 4: use a batch per rank of 2 (global 8) or 3 (global 12)")
        }
        XCTAssertThrowsError(try DistributedSampler(datasetCount: 100, globalBatchSize: 3, worldSize: 4, rank: 0, seed: 1)) {
            XCTAssertEqual("\($0)", "global batch 3 is not divisible by world size 4: use a batch per rank of 1 (global 4)")
        }
        XCTAssertThrowsError(try DistributedSampler(datasetCount: 20, globalBatchSize: 32, worldSize: 2, rank: 0, seed: 1)) {
            XCTAssertEqual($0 as? SamplerError, .batchLargerThanDataset(globalBatchSize: 32, datasetCount: 20))
            XCTAssertTrue("\($0)".contains("larger than the dataset (20 samples)"), "\($0)")
        }
        XCTAssertThrowsError(try DistributedSampler(datasetCount: 20, globalBatchSize: 4, worldSize: 2, rank: 2, seed: 1)) {
            XCTAssertEqual("\($0)", "rank 2 is outside a world of size 2 (ranks are 0..<2)")
        }
        XCTAssertThrowsError(try DistributedSampler(datasetCount: 20, globalBatchSize: 4, worldSize: 2, rank: -1, seed: 1))
        XCTAssertThrowsError(try DistributedSampler(datasetCount: 0, globalBatchSize: 4, seed: 1))
        XCTAssertThrowsError(try DistributedSampler(datasetCount: 20, globalBatchSize: 0, seed: 1))
        XCTAssertThrowsError(try DistributedSampler(datasetCount: 20, globalBatchSize: 4, worldSize: 0, rank: 0, seed: 1))
        // A cursor past the end of an epoch (e.g. saved with a larger dataset) is refused.
        XCTAssertThrowsError(try DistributedSampler(datasetCount: 20, globalBatchSize: 4, seed: 1,
                                                    cursor: Cursor(epoch: 0, batchInEpoch: 5))) {
            XCTAssertTrue("\($0)".contains("an epoch has 5 batches"), "\($0)")
        }
        // Decoding applies the same checks as init.
        let bad = Data(#"{"datasetCount":20,"globalBatchSize":6,"worldSize":4,"rank":0,"seed":1,"shuffle":true,"dropLast":true,"cursor":{"epoch":0,"batchInEpoch":0}}"#.utf8)
        XCTAssertThrowsError(try JSONDecoder().decode(DistributedSampler.self, from: bad)) {
            XCTAssertEqual($0 as? SamplerError, .batchNotDivisible(globalBatchSize: 6, worldSize: 4))
        }
    }

    func testEvaluationShardsCoverEverySampleOnceWithNearEqualSizes() {
        for count in [0, 1, 5, 10, 10_000, 10_001] {
            for world in [1, 2, 3, 4, 7] {
                let shards = (0..<world).map { evaluationShard(count: count, rank: $0, worldSize: world) }
                XCTAssertEqual(shards.first?.lowerBound, 0)
                XCTAssertEqual(shards.last?.upperBound, count)
                for r in 1..<world { XCTAssertEqual(shards[r].lowerBound, shards[r - 1].upperBound, "count \(count) world \(world)") }
                let sizes = shards.map(\.count)
                XCTAssertLessThanOrEqual(sizes.max()! - sizes.min()!, 1, "count \(count) world \(world): \(sizes)")
            }
        }
        XCTAssertEqual((0..<3).map { evaluationShard(count: 10, rank: $0, worldSize: 3) }, [0..<4, 4..<7, 7..<10])
    }
}
