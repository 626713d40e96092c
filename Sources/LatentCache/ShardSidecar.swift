import Checkpoint
import Foundation

/// `<shard>.json`, written (atomically) right after its shard: what the shard holds and what
/// it was made from. A rerun skips a shard only when its sidecar matches the plan and the
/// shard's bytes still hash to the sidecar's checksum, so a shard from a crashed, corrupted or
/// differently configured run is rewritten. Rank 0 builds the manifest from the sidecars, so
/// ranks never send shard metadata to each other.
public struct ShardSidecar: Codable, Equatable {
    var file: String
    var split: String
    var firstSample: Int
    var sampleCount: Int
    var bytes: Int
    var xxh64: String
    var autoencoderFingerprint: String
    var dataset: String
    var dtype: LatentDType
    var stored: StoredLatent
    var zstdLevel: Int
    var latentShape: [Int]
    /// The encoder batch size: it changes the latents' last bits, so it is part of the plan.
    var encoderBatchSize: Int

    enum CodingKeys: String, CodingKey {
        case file, split, bytes, xxh64, dataset, dtype, stored
        case firstSample = "first_sample", sampleCount = "sample_count"
        case autoencoderFingerprint = "autoencoder_fingerprint", zstdLevel = "zstd_level", latentShape = "latent_shape"
        case encoderBatchSize = "encoder_batch_size"
    }

    static func fileName(forShard shard: String) -> String { shard + ".json" }

    public static func read(_ url: URL) -> ShardSidecar? {
        guard let data = try? Data(contentsOf: url) else { return nil }
        return try? JSONDecoder().decode(ShardSidecar.self, from: data)
    }

    func write(_ url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var data = try encoder.encode(self)
        data.append(0x0A)
        try AtomicFile.write(data, to: url)
    }

    /// Whether the file at `url` is exactly the shard this sidecar describes (size and hash).
    func matchesFile(at url: URL) -> Bool {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: url.path),
              (attributes[.size] as? Int) == bytes,
              let data = try? Data(contentsOf: url, options: .alwaysMapped) else { return false }
        return XXH64.hexString(XXH64.hash(data)) == xxh64
    }
}
