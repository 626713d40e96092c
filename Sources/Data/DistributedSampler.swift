import Tensor

/// Which samples each rank trains on, batch by batch, for data-parallel training.
///
/// Every epoch is one permutation of `0..<datasetCount`, drawn from the seed and the epoch
/// number only, so every rank computes the same permutation without communicating. The
/// permutation is cut into consecutive global batches of `globalBatchSize`, and rank r takes
/// the r-th contiguous slice (`batchPerRank` samples) of each global batch.
///
/// Why this layout: concatenating the ranks' slices in rank order gives back the global batch
/// exactly, so N ranks that average their gradients see the same samples, in the same order,
/// as one process run with the same global batch. That is what makes an N-rank run comparable
/// to (and testable against) a single-process run.
///
/// The cursor counts *global* batches, so a saved cursor means the same position in the data
/// whatever the world size; saving it with a checkpoint and passing it back to
/// `init(..., cursor:)` continues exactly where training stopped.
public struct DistributedSampler: Codable, Equatable, Sendable {
    /// A position in the stream of global batches: the next batch `nextBatch()` returns.
    public struct Cursor: Codable, Equatable, Hashable, Sendable, CustomStringConvertible {
        public var epoch: Int
        public var batchInEpoch: Int

        public init(epoch: Int = 0, batchInEpoch: Int = 0) {
            self.epoch = epoch
            self.batchInEpoch = batchInEpoch
        }

        public var description: String { "epoch \(epoch), batch \(batchInEpoch)" }
    }

    public let datasetCount: Int
    public let globalBatchSize: Int
    public let worldSize: Int
    public let rank: Int
    public let seed: UInt64
    /// When false every epoch visits the samples in index order (evaluation, debugging).
    public let shuffle: Bool
    /// When true the samples left over after the last whole global batch of an epoch are
    /// skipped (they are different samples every epoch when shuffling). When false the last
    /// global batch is completed with the first samples of the same epoch's order, so every
    /// sample is seen at least once per epoch and every batch has the same size on every
    /// rank (as PyTorch's DistributedSampler pads).
    public let dropLast: Bool
    public private(set) var cursor: Cursor

    /// The permutation of the cursor's epoch, kept so consecutive batches do not redraw it.
    /// Derived data: not encoded and not compared.
    private var cachedOrder: (epoch: Int, order: [Int])?

    private enum CodingKeys: String, CodingKey {
        case datasetCount, globalBatchSize, worldSize, rank, seed, shuffle, dropLast, cursor
    }

    /// - Throws: `SamplerError` when the global batch does not split evenly across ranks, is
    ///   larger than the dataset, the rank is outside the world, or the cursor is outside
    ///   the data.
    public init(datasetCount: Int, globalBatchSize: Int, worldSize: Int = 1, rank: Int = 0,
                seed: UInt64, shuffle: Bool = true, dropLast: Bool = true, cursor: Cursor = Cursor()) throws {
        self.datasetCount = datasetCount
        self.globalBatchSize = globalBatchSize
        self.worldSize = worldSize
        self.rank = rank
        self.seed = seed
        self.shuffle = shuffle
        self.dropLast = dropLast
        self.cursor = cursor
        try validate()
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        datasetCount = try c.decode(Int.self, forKey: .datasetCount)
        globalBatchSize = try c.decode(Int.self, forKey: .globalBatchSize)
        worldSize = try c.decode(Int.self, forKey: .worldSize)
        rank = try c.decode(Int.self, forKey: .rank)
        seed = try c.decode(UInt64.self, forKey: .seed)
        shuffle = try c.decode(Bool.self, forKey: .shuffle)
        dropLast = try c.decode(Bool.self, forKey: .dropLast)
        cursor = try c.decode(Cursor.self, forKey: .cursor)
        try validate()  // A hand-edited or foreign state file gets the same checks as init.
    }

    public static func == (a: DistributedSampler, b: DistributedSampler) -> Bool {
        a.datasetCount == b.datasetCount && a.globalBatchSize == b.globalBatchSize && a.worldSize == b.worldSize
            && a.rank == b.rank && a.seed == b.seed && a.shuffle == b.shuffle && a.dropLast == b.dropLast
            && a.cursor == b.cursor
    }

    private func validate() throws {
        guard worldSize >= 1 else { throw SamplerError.invalidWorldSize(worldSize) }
        guard rank >= 0 && rank < worldSize else { throw SamplerError.rankOutOfRange(rank: rank, worldSize: worldSize) }
        guard datasetCount >= 1 else { throw SamplerError.emptyDataset }
        guard globalBatchSize >= 1 else { throw SamplerError.invalidBatchSize(globalBatchSize) }
        guard globalBatchSize % worldSize == 0 else {
            throw SamplerError.batchNotDivisible(globalBatchSize: globalBatchSize, worldSize: worldSize)
        }
        guard globalBatchSize <= datasetCount else {
            throw SamplerError.batchLargerThanDataset(globalBatchSize: globalBatchSize, datasetCount: datasetCount)
        }
        guard cursor.epoch >= 0 && cursor.batchInEpoch >= 0 && cursor.batchInEpoch < batchesPerEpoch else {
            throw SamplerError.cursorOutOfRange(cursor, batchesPerEpoch: batchesPerEpoch)
        }
    }

    /// Samples each rank takes from every global batch.
    public var batchPerRank: Int { globalBatchSize / worldSize }

    /// Global batches (optimizer steps without accumulation) in one epoch.
    public var batchesPerEpoch: Int {
        dropLast ? datasetCount / globalBatchSize : (datasetCount + globalBatchSize - 1) / globalBatchSize
    }

    /// The order in which `epoch` visits the dataset; identical on every rank.
    public func order(epoch: Int) -> [Int] {
        precondition(epoch >= 0, "order(epoch:): epoch \(epoch) is negative")
        guard shuffle else { return Array(0..<datasetCount) }
        var generator = RandomGenerator(seed: seed).derived(UInt64(epoch))
        return generator.permutation(datasetCount)
    }

    /// The whole global batch at `position` (every rank's slice, in rank order): what a single
    /// process with the same global batch trains on.
    public func globalBatch(at position: Cursor) -> [Int] {
        globalBatch(at: position, order: order(epoch: position.epoch))
    }

    /// This rank's slice of the global batch at `position`.
    public func localBatch(at position: Cursor) -> [Int] {
        localSlice(of: globalBatch(at: position))
    }

    /// This rank's indices for the batch at the cursor; moves the cursor to the next batch,
    /// into the next epoch after the last batch of an epoch.
    public mutating func nextBatch() -> [Int] {
        let order: [Int]
        if let cached = cachedOrder, cached.epoch == cursor.epoch {
            order = cached.order
        } else {
            order = self.order(epoch: cursor.epoch)
            cachedOrder = (cursor.epoch, order)
        }
        let batch = localSlice(of: globalBatch(at: cursor, order: order))
        cursor.batchInEpoch += 1
        if cursor.batchInEpoch == batchesPerEpoch {
            cursor = Cursor(epoch: cursor.epoch + 1, batchInEpoch: 0)
        }
        return batch
    }

    private func globalBatch(at position: Cursor, order: [Int]) -> [Int] {
        precondition(position.batchInEpoch >= 0 && position.batchInEpoch < batchesPerEpoch,
                     "batch \(position.batchInEpoch) is outside an epoch of \(batchesPerEpoch) batches")
        let start = position.batchInEpoch * globalBatchSize
        let end = start + globalBatchSize
        if end <= datasetCount { return Array(order[start..<end]) }
        // Only without dropLast: complete the last batch from the start of this epoch's order
        // (fewer than datasetCount samples are needed, since the batch fits in the dataset).
        return Array(order[start...]) + order[0..<(end - datasetCount)]
    }

    private func localSlice(of global: [Int]) -> [Int] {
        Array(global[rank * batchPerRank..<(rank + 1) * batchPerRank])
    }
}

/// Rank `rank`'s contiguous share of a held-out set of `count` samples: shares differ in
/// size by at most one (the first `count % worldSize` ranks take one more), and together
/// they cover `0..<count` exactly once, so metrics summed over ranks count every sample once.
public func evaluationShard(count: Int, rank: Int, worldSize: Int) -> Range<Int> {
    precondition(count >= 0, "evaluationShard: count \(count) is negative")
    precondition(worldSize >= 1, "evaluationShard: world size \(worldSize) must be at least 1")
    precondition(rank >= 0 && rank < worldSize, "evaluationShard: rank \(rank) is outside a world of size \(worldSize)")
    let base = count / worldSize, extra = count % worldSize
    let start = rank * base + min(rank, extra)
    return start..<(start + base + (rank < extra ? 1 : 0))
}

/// A sampler configuration that cannot work, with the fix where there is an obvious one.
public enum SamplerError: Error, CustomStringConvertible, Equatable {
    case batchNotDivisible(globalBatchSize: Int, worldSize: Int)
    case batchLargerThanDataset(globalBatchSize: Int, datasetCount: Int)
    case rankOutOfRange(rank: Int, worldSize: Int)
    case invalidWorldSize(Int)
    case invalidBatchSize(Int)
    case emptyDataset
    case cursorOutOfRange(DistributedSampler.Cursor, batchesPerEpoch: Int)

    public var description: String {
        switch self {
        case let .batchNotDivisible(global, world):
            // The nearest global batches that do split evenly, stated per rank.
            let lower = global / world, upper = lower + 1
            var options: [String] = []
            if lower > 0 { options.append("\(lower) (global \(lower * world))") }
            options.append("\(upper) (global \(upper * world))")
            return "global batch \(global) is not divisible by world size \(world): use a batch per rank of "
                + options.joined(separator: " or ")
        case let .batchLargerThanDataset(global, count):
            return "global batch \(global) is larger than the dataset (\(count) samples): use a smaller batch per rank or fewer ranks"
        case let .rankOutOfRange(rank, world):
            return "rank \(rank) is outside a world of size \(world) (ranks are 0..<\(world))"
        case let .invalidWorldSize(world):
            return "world size \(world) must be at least 1"
        case let .invalidBatchSize(batch):
            return "global batch \(batch) must be at least 1"
        case .emptyDataset:
            return "the dataset is empty: there is nothing to sample"
        case let .cursorOutOfRange(cursor, batches):
            return "data cursor (\(cursor)) is outside the data: an epoch has \(batches) batches; "
                + "was it saved with a different dataset or global batch?"
        }
    }
}
