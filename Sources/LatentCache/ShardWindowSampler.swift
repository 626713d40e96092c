import Data
import Tensor

/// Which cached samples each rank reads, batch by batch, with a shuffle that streams.
///
/// A full permutation of the split would touch a different shard on almost every sample. The
/// epoch's order is instead: the shards in a permuted order (drawn from seed and epoch), cut
/// into windows of `window` consecutive shards, and the samples of each window permuted
/// (again from seed, epoch and window). A reader then needs only the shards of about two
/// windows in memory at once, while consecutive batches still mix samples from `window`
/// different shards and every epoch is ordered differently.
///
/// Batching is DistributedSampler's: the order is cut into global batches of
/// `globalBatchSize` and rank r takes the r-th slice of each, so N ranks together see exactly
/// the batches one process would. The cursor counts global batches, so a saved cursor resumes
/// at the same sample whatever the world size.
public struct ShardWindowSampler: Codable, Equatable, Sendable {
    public typealias Cursor = DistributedSampler.Cursor

    /// Samples per shard, in shard order (shard i holds positions starting at the sum of the
    /// counts before it).
    public let shardCounts: [Int]
    public let globalBatchSize: Int
    public let worldSize: Int
    public let rank: Int
    public let seed: UInt64
    public let window: Int
    public let shuffle: Bool
    /// As DistributedSampler: drop the incomplete last batch, or complete it from the start
    /// of the same epoch's order.
    public let dropLast: Bool
    public private(set) var cursor: Cursor

    public init(shardCounts: [Int], globalBatchSize: Int, worldSize: Int = 1, rank: Int = 0, seed: UInt64,
                window: Int = 4, shuffle: Bool = true, dropLast: Bool = true, cursor: Cursor = Cursor()) throws {
        self.shardCounts = shardCounts
        self.globalBatchSize = globalBatchSize
        self.worldSize = worldSize
        self.rank = rank
        self.seed = seed
        self.window = window
        self.shuffle = shuffle
        self.dropLast = dropLast
        self.cursor = cursor
        guard window >= 1 else { throw LatentCacheError.invalidOption("shuffle window \(window) must be at least 1 shard") }
        guard shardCounts.allSatisfy({ $0 >= 1 }) else { throw LatentCacheError.invalidOption("every shard must hold samples, got \(shardCounts)") }
        // The same checks (and messages) as the in-memory sampler.
        _ = try DistributedSampler(datasetCount: sampleCount, globalBatchSize: globalBatchSize, worldSize: worldSize,
                                   rank: rank, seed: seed, shuffle: shuffle, dropLast: dropLast, cursor: cursor)
    }

    public var sampleCount: Int { shardCounts.reduce(0, +) }
    public var batchPerRank: Int { globalBatchSize / worldSize }
    public var batchesPerEpoch: Int {
        dropLast ? sampleCount / globalBatchSize : (sampleCount + globalBatchSize - 1) / globalBatchSize
    }

    /// The epoch's order of sample positions, identical on every rank.
    public func order(epoch: Int) -> [Int] {
        precondition(epoch >= 0, "ShardWindowSampler.order: epoch \(epoch) is negative")
        guard shuffle else { return Array(0..<sampleCount) }
        var starts = [Int](repeating: 0, count: shardCounts.count)
        for i in 1..<max(1, shardCounts.count) { starts[i] = starts[i - 1] + shardCounts[i - 1] }
        let base = RandomGenerator(seed: seed).derived(UInt64(epoch))
        var shardGenerator = base.derived(0)
        let shardOrder = shardGenerator.permutation(shardCounts.count)
        var result: [Int] = []
        result.reserveCapacity(sampleCount)
        for (w, first) in stride(from: 0, to: shardOrder.count, by: window).enumerated() {
            var positions: [Int] = []
            for s in shardOrder[first..<min(first + window, shardOrder.count)] {
                positions += starts[s]..<(starts[s] + shardCounts[s])
            }
            var windowGenerator = base.derived(1, UInt64(w))
            for k in windowGenerator.permutation(positions.count) { result.append(positions[k]) }
        }
        return result
    }

    /// Every rank's slice of the global batch at `position`, in rank order.
    public func globalBatch(at position: Cursor) -> [Int] {
        globalBatch(at: position, order: order(epoch: position.epoch))
    }

    /// This rank's positions for the batch at the cursor; advances the cursor.
    public mutating func nextBatch(order: [Int]? = nil) -> [Int] {
        let global = globalBatch(at: cursor, order: order ?? self.order(epoch: cursor.epoch))
        cursor.batchInEpoch += 1
        if cursor.batchInEpoch == batchesPerEpoch { cursor = Cursor(epoch: cursor.epoch + 1, batchInEpoch: 0) }
        return Array(global[rank * batchPerRank..<(rank + 1) * batchPerRank])
    }

    private func globalBatch(at position: Cursor, order: [Int]) -> [Int] {
        precondition(position.batchInEpoch >= 0 && position.batchInEpoch < batchesPerEpoch,
                     "batch \(position.batchInEpoch) is outside an epoch of \(batchesPerEpoch) batches")
        let start = position.batchInEpoch * globalBatchSize, end = start + globalBatchSize
        if end <= order.count { return Array(order[start..<end]) }
        return Array(order[start...]) + order[0..<(end - order.count)]
    }
}
