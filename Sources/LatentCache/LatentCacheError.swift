import Foundation

/// A cache that cannot be used or written, always naming the cache directory or the shard.
public enum LatentCacheError: Error, CustomStringConvertible, Equatable {
    case manifestMissing(cache: String)
    case manifestUnreadable(path: String, reason: String)
    case unsupportedVersion(path: String, found: Int, supported: Int)
    case autoencoderMismatch(cache: String, cached: String, current: String)
    case datasetMismatch(cache: String, split: String, cached: String, current: String)
    case unknownSplit(cache: String, split: String, available: [String])
    case shardMissing(shard: String, path: String)
    case shardSizeMismatch(shard: String, expected: Int, actual: Int)
    case shardChecksumMismatch(shard: String, expected: String, actual: String)
    case shardMalformed(shard: String, reason: String)
    case invalidOption(String)
    /// The test hook `stopAfterShards` ended the run early, as a crash would.
    case interrupted(afterShards: Int)

    public var description: String {
        switch self {
        case let .manifestMissing(cache):
            return "cache \(cache) has no manifest.json: it was never completed (rerun `ldm precompute-latents` to finish it)"
        case let .manifestUnreadable(path, reason):
            return "cannot read the cache manifest \(path): \(reason)"
        case let .unsupportedVersion(path, found, supported):
            return "\(path) has format_version \(found); this build reads version \(supported) (re-create the cache)"
        case let .autoencoderMismatch(cache, cached, current):
            return "cache \(cache) was made with autoencoder fingerprint \(cached), this run uses \(current): "
                + "use another --out directory or delete the old cache"
        case let .datasetMismatch(cache, split, cached, current):
            return "cache \(cache) (\(split) split) was made from dataset \(cached), this run uses \(current): "
                + "use another --out directory or delete the old cache"
        case let .unknownSplit(cache, split, available):
            return "cache \(cache) has no split '\(split)' (it has: \(available.joined(separator: ", ")))"
        case let .shardMissing(shard, path):
            return "shard \(shard) is missing (\(path))"
        case let .shardSizeMismatch(shard, expected, actual):
            return "shard \(shard) is \(actual) bytes, the manifest says \(expected) (truncated or overwritten)"
        case let .shardChecksumMismatch(shard, expected, actual):
            return "shard \(shard) is corrupt: XXH64 \(actual), the manifest says \(expected)"
        case let .shardMalformed(shard, reason):
            return "shard \(shard) is malformed: \(reason)"
        case let .invalidOption(message):
            return message
        case let .interrupted(after):
            return "precompute stopped after \(after) shard(s) (test hook LDM_PRECOMPUTE_STOP_AFTER_SHARDS)"
        }
    }
}
