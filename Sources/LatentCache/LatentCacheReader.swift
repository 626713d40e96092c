import Checkpoint
import Data
import Foundation
import Tensor

/// Streams one split of a latent cache for training.
///
/// Opens the manifest (refusing other format versions), loads shards on demand into a small
/// LRU of decoded shards (so memory stays bounded by `cacheCapacity` shards whatever the
/// split's size), checks each shard's size and XXH64 against the manifest before decoding
/// (failing with the shard's name), and assembles this rank's part of every global batch in
/// the order of a `ShardWindowSampler`.
public final class LatentCacheReader {
    public let directory: URL
    public let manifest: LatentCacheManifest
    public let split: String
    public let shards: [LatentCacheManifest.Shard]
    public private(set) var sampler: ShardWindowSampler
    /// Decoded shards kept at once. Two windows' worth avoids reloading at window boundaries.
    public let cacheCapacity: Int

    private let starts: [Int]
    private var decoded: [Int: LatentShard] = [:]
    private var recency: [Int] = []
    private var epochOrder: (epoch: Int, order: [Int])?
    /// Shards decoded so far (a measure of streaming efficiency).
    public private(set) var shardLoads = 0
    /// Shards held decoded in memory now (never more than `cacheCapacity`).
    public var residentShardCount: Int { decoded.count }

    /// - Parameters:
    ///   - globalBatchSize, worldSize, rank: as DistributedSampler; rank r gets the r-th slice.
    ///   - window: shards whose samples are shuffled together.
    ///   - cursor: where to resume (from a checkpoint's saved `cursor`).
    public init(directory: URL, split: String = "train", globalBatchSize: Int, worldSize: Int = 1, rank: Int = 0,
                seed: UInt64, window: Int = 4, shuffle: Bool = true, dropLast: Bool = true,
                cursor: ShardWindowSampler.Cursor = .init(), cacheCapacity: Int? = nil) throws {
        self.directory = directory.standardizedFileURL
        manifest = try LatentCacheManifest.read(from: directory)
        guard manifest.split(named: split) != nil else {
            throw LatentCacheError.unknownSplit(cache: directory.path, split: split, available: manifest.splits.map(\.name))
        }
        self.split = split
        shards = manifest.shards(of: split).sorted { $0.firstSample < $1.firstSample }
        var starts: [Int] = []
        var next = 0
        for s in shards {
            guard s.firstSample == next, s.sampleCount > 0 else {
                throw LatentCacheError.manifestUnreadable(path: directory.appendingPathComponent(LatentCacheManifest.fileName).path,
                                                          reason: "shard \(s.file) starts at sample \(s.firstSample), expected \(next)")
            }
            starts.append(next)
            next += s.sampleCount
        }
        self.starts = starts
        sampler = try ShardWindowSampler(shardCounts: shards.map(\.sampleCount), globalBatchSize: globalBatchSize,
                                         worldSize: worldSize, rank: rank, seed: seed, window: window, shuffle: shuffle,
                                         dropLast: dropLast, cursor: cursor)
        self.cacheCapacity = max(1, cacheCapacity ?? 2 * window)
    }

    /// Samples in the split.
    public var sampleCount: Int { starts.last.map { $0 + shards.last!.sampleCount } ?? 0 }
    public var latentShape: [Int] { manifest.latentShape }
    /// The position of the next batch; save it with a checkpoint to resume mid-epoch.
    public var cursor: ShardWindowSampler.Cursor { sampler.cursor }

    /// Refuses a cache made from another autoencoder or other data (nil skips a check).
    public func validate(autoencoderFingerprint: String? = nil, datasetIdentity: String? = nil) throws {
        if let autoencoderFingerprint, autoencoderFingerprint != manifest.autoencoder.fingerprint {
            throw LatentCacheError.autoencoderMismatch(cache: directory.path, cached: manifest.autoencoder.fingerprint,
                                                       current: autoencoderFingerprint)
        }
        if let datasetIdentity, let cached = manifest.split(named: split)?.dataset, cached != datasetIdentity {
            throw LatentCacheError.datasetMismatch(cache: directory.path, split: split, cached: cached, current: datasetIdentity)
        }
    }

    /// This rank's next batch; advances the cursor (into the next epoch after the last batch).
    public func nextBatch() throws -> LatentBatch {
        let epoch = sampler.cursor.epoch
        if epochOrder?.epoch != epoch { epochOrder = (epoch, sampler.order(epoch: epoch)) }
        var advanced = sampler
        let positions = advanced.nextBatch(order: epochOrder!.order)
        let batch = try self.batch(positions: positions)
        sampler = advanced   // only after the batch was read: a failed read can be retried
        return batch
    }

    /// The samples at split positions `positions`, in that order.
    public func batch(positions: [Int]) throws -> LatentBatch {
        let size = manifest.latentSize, n = positions.count
        let shape = [n] + manifest.latentShape
        let fieldCount = manifest.stored.fieldCount
        let outputs = (0..<fieldCount).map { _ in Tensor(uninitialized: shape) }
        var labels = [Int](repeating: -1, count: n), indices = [Int](repeating: 0, count: n)
        var captions: [String?]? = nil
        for (k, position) in positions.enumerated() {
            precondition(position >= 0 && position < sampleCount, "position \(position) is outside the \(split) split (\(sampleCount) samples)")
            let s = shardIndex(containing: position)
            let shard = try loadShard(s)
            let offset = position - starts[s]
            for f in 0..<fieldCount {
                shard.fields[f].withUnsafeBufferPointer { src in
                    (outputs[f].pointer + k * size).update(from: src.baseAddress! + offset * size, count: size)
                }
            }
            labels[k] = shard.labels[offset]
            indices[k] = shard.datasetIndices[offset]
            if let c = shard.captions {
                if captions == nil { captions = [String?](repeating: nil, count: n) }
                captions![k] = c[offset]
            }
        }
        return LatentBatch(latents: outputs[0], logVariance: fieldCount == 2 ? outputs[1] : nil,
                           labels: labels, indices: indices, captions: captions)
    }

    func shardIndex(containing position: Int) -> Int {
        var lo = 0, hi = starts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if starts[mid] <= position { lo = mid } else { hi = mid - 1 }
        }
        return lo
    }

    /// Shard `index` of the split, decoded, from the LRU or from disk (verified).
    public func loadShard(_ index: Int) throws -> LatentShard {
        if let shard = decoded[index] {
            if recency.last != index { recency.removeAll { $0 == index }; recency.append(index) }
            return shard
        }
        let shard = try Self.readShard(shards[index], in: directory, manifest: manifest)
        shardLoads += 1
        decoded[index] = shard
        recency.append(index)
        while recency.count > cacheCapacity { decoded[recency.removeFirst()] = nil }
        return shard
    }

    /// Reads, verifies and decodes one shard of `manifest`; every failure names the shard.
    public static func readShard(_ entry: LatentCacheManifest.Shard, in directory: URL,
                                 manifest: LatentCacheManifest) throws -> LatentShard {
        let url = directory.appendingPathComponent(entry.file)
        guard FileManager.default.fileExists(atPath: url.path) else { throw LatentCacheError.shardMissing(shard: entry.file, path: url.path) }
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw LatentCacheError.shardMalformed(shard: entry.file, reason: "cannot read: \(error.localizedDescription)")
        }
        guard data.count == entry.bytes else { throw LatentCacheError.shardSizeMismatch(shard: entry.file, expected: entry.bytes, actual: data.count) }
        let hash = XXH64.hexString(XXH64.hash(data))
        guard hash == entry.xxh64 else { throw LatentCacheError.shardChecksumMismatch(shard: entry.file, expected: entry.xxh64, actual: hash) }
        let shard = try data.withUnsafeBytes { try ShardCodec.decode($0, shard: entry.file) }
        try check(shard, against: entry, manifest: manifest)
        return shard
    }

    /// The decoded shard must be what the manifest says it is.
    static func check(_ shard: LatentShard, against entry: LatentCacheManifest.Shard, manifest: LatentCacheManifest) throws {
        func bad(_ reason: String) -> LatentCacheError { .shardMalformed(shard: entry.file, reason: reason) }
        guard shard.sampleCount == entry.sampleCount else { throw bad("holds \(shard.sampleCount) samples, the manifest says \(entry.sampleCount)") }
        guard shard.firstSample == entry.firstSample else { throw bad("starts at sample \(shard.firstSample), the manifest says \(entry.firstSample)") }
        guard shard.latentShape == manifest.latentShape else { throw bad("latent shape \(shard.latentShape), the manifest says \(manifest.latentShape)") }
        guard shard.stored == manifest.stored else { throw bad("stores \(shard.stored.rawValue), the manifest says \(manifest.stored.rawValue)") }
    }
}
