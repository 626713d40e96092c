import CZstd
import Checkpoint
import Data
import Distributed
import Foundation
import Models
import Tensor

/// One split to encode into the cache ("train", "test").
public struct CacheSplitSource {
    public var name: String
    public var dataset: ImageDataset
    public init(name: String, dataset: ImageDataset) {
        self.name = name
        self.dataset = dataset
    }
}

public struct PrecomputeOptions: Sendable {
    /// Samples per shard (the last shard of a split may hold fewer).
    public var shardSize = 1024
    public var dtype: LatentDType = .float16
    public var zstdLevel = 3
    /// Images per encoder call. Batches start at each shard's first sample and never cross a
    /// shard: the encoder's output for an image differs in the last bits with the batch it
    /// is in (GEMM blocking), so this is what makes a shard's bytes independent of the rank
    /// and of the world size. Part of the configuration a byte-identical rerun must repeat.
    public var batchSize = 64
    /// Test hook: stop (throwing `.interrupted`) after this rank has written this many shards,
    /// as if the process had been killed.
    public var stopAfterShards: Int?

    public init() {}

    func validate() throws {
        guard shardSize >= 1 else { throw LatentCacheError.invalidOption("--shard-size must be at least 1, got \(shardSize)") }
        guard batchSize >= 1 else { throw LatentCacheError.invalidOption("--batch-size must be at least 1, got \(batchSize)") }
        let levels = Int(ZSTD_minCLevel())...Int(ZSTD_maxCLevel())
        guard levels.contains(zstdLevel) else {
            throw LatentCacheError.invalidOption("--zstd-level \(zstdLevel) is outside zstd's \(levels.lowerBound)...\(levels.upperBound)")
        }
    }
}

/// What a precompute run did on this rank.
public struct PrecomputeReport: Sendable {
    public var shardsWritten: [String] = []
    public var shardsSkipped: [String] = []
    public var samplesEncoded = 0
    public var seconds = 0.0
    /// Rank 0 only: the manifest it wrote.
    public var manifestWritten = false
}

/// Runs a frozen first stage over dataset splits and writes the sharded latent cache.
///
/// Shards are numbered per split and assigned to ranks round-robin over the global shard list
/// (train shards first, then test), so every rank writes its own files in parallel and the
/// result is byte-identical for any world size. Each shard is written to a temporary name,
/// fsync'd and renamed, then its sidecar likewise; after a barrier rank 0 builds the manifest
/// from the sidecars and writes it last. A rerun skips shards whose sidecar and checksum match.
public final class LatentPrecomputer {
    /// Called on every rank after each of its shards: (shards done, this rank's shards,
    /// images encoded, seconds since the start).
    public var progress: ((Int, Int, Int, Double) -> Void)?
    public let directory: URL
    public let splits: [CacheSplitSource]
    public let preprocessing: LatentCacheManifest.Preprocessing
    public let options: PrecomputeOptions
    let communicator: Communicator
    let model: FirstStageModel
    /// The frozen encoder's weights in the convolutions' layouts, reordered once for all shards.
    let layouts = WeightLayoutCache()
    let autoencoder: LatentCacheManifest.Autoencoder
    public let latentShape: [Int]
    public let stored: StoredLatent

    struct PlannedShard {
        var split: Int
        var index: Int
        var range: Range<Int>
        var file: String
    }

    public init(autoencoder url: URL, splits: [CacheSplitSource], preprocessing: LatentCacheManifest.Preprocessing,
                directory: URL, options: PrecomputeOptions = PrecomputeOptions(), communicator: Communicator) throws {
        try options.validate()
        guard !splits.isEmpty else { throw LatentCacheError.invalidOption("nothing to encode: no dataset splits") }
        guard Set(splits.map(\.name)).count == splits.count else {
            throw LatentCacheError.invalidOption("split names \(splits.map(\.name)) are not unique")
        }
        let model = try FirstStageModel.load(from: url)
        let config = model.config
        for s in splits {
            let d = s.dataset
            guard d.channels == config.inChannels else {
                throw LatentCacheError.invalidOption("the \(s.name) images have \(d.channels) channel(s), the autoencoder \(url.path) takes \(config.inChannels)")
            }
            guard d.height == splits[0].dataset.height, d.width == splits[0].dataset.width, d.height % config.downsamplingFactor == 0,
                  d.width % config.downsamplingFactor == 0 else {
                throw LatentCacheError.invalidOption("the \(s.name) images are \(d.width)x\(d.height): every split must have the same size, "
                    + "divisible by the autoencoder's downsampling factor \(config.downsamplingFactor)")
            }
            guard d.count > 0 else { throw LatentCacheError.invalidOption("the \(s.name) split (\(d.identity)) is empty") }
        }
        model.module.eval()
        self.model = model
        self.autoencoder = try AutoencoderFingerprint.compute(weights: url, config: config)
        let f = config.downsamplingFactor
        self.latentShape = [config.embedDim, splits[0].dataset.height / f, splits[0].dataset.width / f]
        self.stored = config.regularizer == .kl ? .meanAndLogVariance : .latent
        self.directory = directory.standardizedFileURL
        self.splits = splits
        self.preprocessing = preprocessing
        self.options = options
        self.communicator = communicator
    }

    static func shardName(split: String, index: Int) -> String {
        let digits = String(index)
        return "\(split)-\(String(repeating: "0", count: max(0, 6 - digits.count)))\(digits).shard"
    }

    var plan: [PlannedShard] {
        var result: [PlannedShard] = []
        for (s, source) in splits.enumerated() {
            let count = source.dataset.count
            for (i, start) in stride(from: 0, to: count, by: options.shardSize).enumerated() {
                result.append(PlannedShard(split: s, index: i, range: start..<min(start + options.shardSize, count),
                                           file: Self.shardName(split: source.name, index: i)))
            }
        }
        return result
    }

    func expectedSidecar(for shard: PlannedShard) -> ShardSidecar {
        ShardSidecar(file: shard.file, split: splits[shard.split].name, firstSample: shard.range.lowerBound,
                     sampleCount: shard.range.count, bytes: 0, xxh64: "", autoencoderFingerprint: autoencoder.fingerprint,
                     dataset: splits[shard.split].dataset.identity, dtype: options.dtype, stored: stored,
                     zstdLevel: options.zstdLevel, latentShape: latentShape, encoderBatchSize: options.batchSize)
    }

    @discardableResult
    public func run() throws -> PrecomputeReport {
        let start = Date()
        var report = PrecomputeReport()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try refuseForeignCache()
        try communicator.barrier()   // every rank has read the old manifest before rank 0 removes it
        if communicator.isRoot { try removeManifestAndTemporaries() }
        try communicator.barrier()

        let plan = self.plan
        let mine = plan.indices.filter { $0 % communicator.size == communicator.rank }.count
        var done = 0
        for (j, shard) in plan.enumerated() where j % communicator.size == communicator.rank {
            done += 1
            defer { progress?(done, mine, report.samplesEncoded, Date().timeIntervalSince(start)) }
            let shardURL = directory.appendingPathComponent(shard.file)
            let sidecarURL = directory.appendingPathComponent(ShardSidecar.fileName(forShard: shard.file))
            var expected = expectedSidecar(for: shard)
            if let existing = ShardSidecar.read(sidecarURL) {
                var comparable = existing
                comparable.bytes = 0
                comparable.xxh64 = ""
                if comparable == expected && existing.matchesFile(at: shardURL) {
                    report.shardsSkipped.append(shard.file)
                    continue
                }
            }
            if let limit = options.stopAfterShards, report.shardsWritten.count >= limit {
                throw LatentCacheError.interrupted(afterShards: limit)
            }
            let bytes = try ShardCodec.encode(try encode(shard), dtype: options.dtype, level: options.zstdLevel)
            // Remove a stale sidecar first: a crash between the two renames must not leave
            // an old sidecar next to a new shard (the mismatch would be caught, but cheaply).
            try? FileManager.default.removeItem(at: sidecarURL)
            try AtomicFile.write(Data(bytes), to: shardURL)
            expected.bytes = bytes.count
            expected.xxh64 = XXH64.hexString(bytes.withUnsafeBytes { XXH64.hash($0) })
            try expected.write(sidecarURL)
            report.shardsWritten.append(shard.file)
            report.samplesEncoded += shard.range.count
        }

        try communicator.barrier()
        if communicator.isRoot {
            try writeManifest(plan: plan)
            report.manifestWritten = true
        }
        try communicator.barrier()
        report.seconds = Date().timeIntervalSince(start)
        return report
    }

    /// Encodes one shard's samples, in batches that start at the shard's first sample.
    func encode(_ shard: PlannedShard) throws -> LatentShard {
        let dataset = splits[shard.split].dataset
        var indices: [Int] = [], labels: [Int] = []
        var fields = [[Float]](repeating: [], count: stored.fieldCount)
        for batchStart in stride(from: shard.range.lowerBound, to: shard.range.upperBound, by: options.batchSize) {
            let batch = Array(batchStart..<min(batchStart + options.batchSize, shard.range.upperBound))
            let (images, batchLabels) = try dataset.batch(batch)
            let outputs: [Tensor] = layouts.during { withoutGrad {
                switch model {
                case .kl(let m):
                    let posterior = m.encode(images)
                    return [posterior.mean, posterior.logVariance]
                case .vq(let m):
                    return [m.encode(images)]
                }
            } }
            for (f, t) in outputs.enumerated() {
                precondition(t.shape == [batch.count] + latentShape, "encoder output \(t.shape) differs from the planned latent \(latentShape)")
                fields[f].append(contentsOf: t.buffer)
            }
            indices += batch
            labels += batchLabels
        }
        // Captions are stored as text; tokenisation happens when training (the vocabulary and
        // context length belong to the model, not to the cache).
        return LatentShard(firstSample: shard.range.lowerBound, latentShape: latentShape, stored: stored,
                           datasetIndices: indices, labels: labels, fields: fields,
                           captions: dataset.hasCaptions ? indices.map { dataset.caption(at: $0) } : nil)
    }

    /// Refuses to add to a cache made from another autoencoder or other data (its manifest,
    /// or the sidecars of an interrupted run).
    func refuseForeignCache() throws {
        let manifestURL = directory.appendingPathComponent(LatentCacheManifest.fileName)
        if FileManager.default.fileExists(atPath: manifestURL.path) {
            let old = try LatentCacheManifest.read(from: directory)
            try refuse(fingerprint: old.autoencoder.fingerprint, datasets: old.splits.map { ($0.name, $0.dataset) })
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        for name in names.sorted() where name.hasSuffix(".shard.json") && !AtomicFile.isTemporaryName(name) {
            guard let sidecar = ShardSidecar.read(directory.appendingPathComponent(name)) else { continue }
            try refuse(fingerprint: sidecar.autoencoderFingerprint, datasets: [(sidecar.split, sidecar.dataset)])
        }
    }

    private func refuse(fingerprint: String, datasets: [(split: String, identity: String)]) throws {
        guard fingerprint == autoencoder.fingerprint else {
            throw LatentCacheError.autoencoderMismatch(cache: directory.path, cached: fingerprint, current: autoencoder.fingerprint)
        }
        for (split, identity) in datasets {
            if let current = splits.first(where: { $0.name == split }), current.dataset.identity != identity {
                throw LatentCacheError.datasetMismatch(cache: directory.path, split: split, cached: identity,
                                                       current: current.dataset.identity)
            }
        }
    }

    /// A rerun first invalidates the cache (no manifest until it completes again) and clears
    /// the temporary files a killed run left behind.
    func removeManifestAndTemporaries() throws {
        try? FileManager.default.removeItem(at: directory.appendingPathComponent(LatentCacheManifest.fileName))
        for name in try FileManager.default.contentsOfDirectory(atPath: directory.path) where AtomicFile.isTemporaryName(name) {
            try? FileManager.default.removeItem(at: directory.appendingPathComponent(name))
        }
    }

    /// Rank 0, after every rank has finished: manifest from the sidecars; shard files that
    /// the plan no longer names (an earlier run with a smaller shard size) are removed.
    func writeManifest(plan: [PlannedShard]) throws {
        var entries: [LatentCacheManifest.Shard] = []
        for shard in plan {
            let url = directory.appendingPathComponent(ShardSidecar.fileName(forShard: shard.file))
            var expected = expectedSidecar(for: shard)
            guard let sidecar = ShardSidecar.read(url) else {
                throw LatentCacheError.shardMissing(shard: shard.file, path: url.path)
            }
            expected.bytes = sidecar.bytes
            expected.xxh64 = sidecar.xxh64
            guard sidecar == expected else {
                throw LatentCacheError.shardMalformed(shard: shard.file, reason: "its sidecar \(url.lastPathComponent) does not match this run")
            }
            entries.append(.init(file: shard.file, split: sidecar.split, sampleCount: sidecar.sampleCount,
                                 firstSample: sidecar.firstSample, bytes: sidecar.bytes, xxh64: sidecar.xxh64))
        }
        let planned = Set(plan.flatMap { [$0.file, ShardSidecar.fileName(forShard: $0.file)] })
        for name in try FileManager.default.contentsOfDirectory(atPath: directory.path)
        where (name.hasSuffix(".shard") || name.hasSuffix(".shard.json")) && !planned.contains(name) && !AtomicFile.isTemporaryName(name) {
            try FileManager.default.removeItem(at: directory.appendingPathComponent(name))
        }
        let manifest = LatentCacheManifest(
            latentShape: latentShape, dtype: options.dtype, stored: stored, zstdLevel: options.zstdLevel,
            shardSize: options.shardSize, encoderBatchSize: options.batchSize, autoencoder: autoencoder, preprocessing: preprocessing,
            splits: splits.map { .init(name: $0.name, dataset: $0.dataset.identity, sampleCount: $0.dataset.count) },
            shards: entries)
        try manifest.write(to: directory)
    }
}
