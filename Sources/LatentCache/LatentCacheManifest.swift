import Checkpoint
import Foundation

/// `manifest.json`: the cache's table of contents, written last (atomically) so that a
/// directory with a manifest is a complete cache. JSON keys are snake_case and sorted, and
/// nothing in it depends on time or on the number of ranks, so the same inputs always give
/// the same bytes.
public struct LatentCacheManifest: Codable, Equatable {
    public static let fileName = "manifest.json"
    /// Bumped whenever the manifest or shard layout changes incompatibly.
    public static let currentVersion = 1

    public struct Shard: Codable, Equatable {
        public var file: String
        public var split: String
        public var sampleCount: Int
        /// Position of the shard's first sample within its split.
        public var firstSample: Int
        public var bytes: Int
        /// XXH64 (seed 0) of the whole file, 16 hex digits.
        public var xxh64: String

        enum CodingKeys: String, CodingKey {
            case file, split, bytes, xxh64
            case sampleCount = "sample_count", firstSample = "first_sample"
        }
    }

    public struct Autoencoder: Codable, Equatable {
        /// XXH64 of the weights file's bytes followed by the architecture JSON.
        public var fingerprint: String
        public var path: String
        /// "kl" or "vq".
        public var regularizer: String
        /// The architecture (AutoencoderConfig) as JSON, sorted keys.
        public var config: String
    }

    public struct Preprocessing: Codable, Equatable, Sendable {
        public var resolution: Int
        public var fit: String
        public var channels: Int
        public init(resolution: Int, fit: String, channels: Int) {
            self.resolution = resolution
            self.fit = fit
            self.channels = channels
        }
    }

    public struct Split: Codable, Equatable {
        public var name: String
        /// `ImageDataset.identity` of the data the split was encoded from.
        public var dataset: String
        public var sampleCount: Int
        enum CodingKeys: String, CodingKey { case name, dataset, sampleCount = "sample_count" }
    }

    public var formatVersion: Int
    public var latentShape: [Int]
    public var dtype: LatentDType
    public var stored: StoredLatent
    public var shuffle: String
    public var compression: String
    public var zstdLevel: Int
    public var shardSize: Int
    /// Images per encoder call when the cache was written (latents differ in the last bits
    /// with the batch, so a byte-identical rewrite needs the same value).
    public var encoderBatchSize: Int
    public var autoencoder: Autoencoder
    public var preprocessing: Preprocessing
    public var splits: [Split]
    public var shards: [Shard]
    /// The LDM scale factor (1 / std of the latents): null until the LDM trainer computes it
    /// from the cache and records it here with `settingScaleFactor`.
    public var scaleFactor: Float?

    static let scaleFactorNote = "scale_factor: latent multiplier 1/std(z) used by the LDM; null until the LDM trainer computes it from this cache"

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", latentShape = "latent_shape", dtype, stored, shuffle, compression
        case zstdLevel = "zstd_level", shardSize = "shard_size", encoderBatchSize = "encoder_batch_size", autoencoder, preprocessing, splits, shards
        case scaleFactor = "scale_factor", note
    }

    public init(latentShape: [Int], dtype: LatentDType, stored: StoredLatent, zstdLevel: Int, shardSize: Int,
                encoderBatchSize: Int, autoencoder: Autoencoder, preprocessing: Preprocessing, splits: [Split], shards: [Shard],
                scaleFactor: Float? = nil) {
        formatVersion = Self.currentVersion
        self.latentShape = latentShape
        self.dtype = dtype
        self.stored = stored
        shuffle = "byte"
        compression = "zstd"
        self.zstdLevel = zstdLevel
        self.shardSize = shardSize
        self.encoderBatchSize = encoderBatchSize
        self.autoencoder = autoencoder
        self.preprocessing = preprocessing
        self.splits = splits
        self.shards = shards
        self.scaleFactor = scaleFactor
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        formatVersion = try c.decode(Int.self, forKey: .formatVersion)
        latentShape = try c.decode([Int].self, forKey: .latentShape)
        // Readers size batches by C·h·w: it must be a product of positive dimensions that fits.
        guard !latentShape.isEmpty, latentShape.allSatisfy({ $0 > 0 }),
              ShardCodec.checkedProduct(latentShape + [StoredLatent.meanAndLogVariance.fieldCount, 4]) != nil else {
            throw DecodingError.dataCorruptedError(forKey: .latentShape, in: c, debugDescription:
                "latent_shape \(latentShape) is not a list of positive dimensions whose product fits in memory")
        }
        dtype = try c.decode(LatentDType.self, forKey: .dtype)
        stored = try c.decode(StoredLatent.self, forKey: .stored)
        shuffle = try c.decode(String.self, forKey: .shuffle)
        compression = try c.decode(String.self, forKey: .compression)
        zstdLevel = try c.decode(Int.self, forKey: .zstdLevel)
        shardSize = try c.decode(Int.self, forKey: .shardSize)
        encoderBatchSize = try c.decode(Int.self, forKey: .encoderBatchSize)
        autoencoder = try c.decode(Autoencoder.self, forKey: .autoencoder)
        preprocessing = try c.decode(Preprocessing.self, forKey: .preprocessing)
        splits = try c.decode([Split].self, forKey: .splits)
        shards = try c.decode([Shard].self, forKey: .shards)
        scaleFactor = try c.decodeIfPresent(Float.self, forKey: .scaleFactor)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(formatVersion, forKey: .formatVersion)
        try c.encode(latentShape, forKey: .latentShape)
        try c.encode(dtype, forKey: .dtype)
        try c.encode(stored, forKey: .stored)
        try c.encode(shuffle, forKey: .shuffle)
        try c.encode(compression, forKey: .compression)
        try c.encode(zstdLevel, forKey: .zstdLevel)
        try c.encode(shardSize, forKey: .shardSize)
        try c.encode(encoderBatchSize, forKey: .encoderBatchSize)
        try c.encode(autoencoder, forKey: .autoencoder)
        try c.encode(preprocessing, forKey: .preprocessing)
        try c.encode(splits, forKey: .splits)
        try c.encode(shards, forKey: .shards)
        try c.encode(scaleFactor, forKey: .scaleFactor)   // explicit null: the slot is documented
        try c.encode(Self.scaleFactorNote, forKey: .note)
    }

    /// Floats per latent (C·h·w).
    public var latentSize: Int { latentShape.reduce(1, *) }

    public func shards(of split: String) -> [Shard] { shards.filter { $0.split == split } }

    public func split(named name: String) -> Split? { splits.first { $0.name == name } }

    /// The manifest with the LDM scale factor recorded.
    public func settingScaleFactor(_ value: Float) -> LatentCacheManifest {
        var m = self
        m.scaleFactor = value
        return m
    }

    // MARK: Files

    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var data = try encoder.encode(self)
        data.append(0x0A)
        return data
    }

    /// Writes `manifest.json` atomically into `directory`.
    public func write(to directory: URL) throws {
        try AtomicFile.write(try encoded(), to: directory.appendingPathComponent(Self.fileName))
    }

    /// Reads `directory/manifest.json`, refusing other format versions.
    public static func read(from directory: URL) throws -> LatentCacheManifest {
        let url = directory.appendingPathComponent(fileName)
        guard FileManager.default.fileExists(atPath: url.path) else { throw LatentCacheError.manifestMissing(cache: directory.path) }
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw LatentCacheError.manifestUnreadable(path: url.path, reason: "\(error.localizedDescription)")
        }
        // The version is checked before the rest so a future layout gets a clear message.
        struct Versioned: Decodable { let format_version: Int }
        guard let version = try? JSONDecoder().decode(Versioned.self, from: data) else {
            throw LatentCacheError.manifestUnreadable(path: url.path, reason: "not JSON with a format_version")
        }
        guard version.format_version == currentVersion else {
            throw LatentCacheError.unsupportedVersion(path: url.path, found: version.format_version, supported: currentVersion)
        }
        do {
            return try JSONDecoder().decode(LatentCacheManifest.self, from: data)
        } catch {
            throw LatentCacheError.manifestUnreadable(path: url.path, reason: "\(error)")
        }
    }
}
