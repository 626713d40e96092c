import Checkpoint
import Data
import Foundation
import Tensor

/// A generator's state as hex words: exact (JSON numbers would pass through Double in some
/// readers) and readable from Python.
public struct GeneratorState: Codable, Equatable, Sendable {
    public var words: [String]

    public init(_ generator: RandomGenerator) {
        words = generator.state.map { XXH64.hexString($0) }
    }

    public func generator(file: String, key: String) throws -> RandomGenerator {
        let values = words.compactMap { UInt64($0, radix: 16) }
        guard values.count == words.count, let generator = try? RandomGenerator(state: values) else {
            throw TrainingCheckpointError(path: file, "\(key): not a generator state: \(words)")
        }
        return generator
    }

    public init(from decoder: Decoder) throws { words = try decoder.singleValueContainer().decode([String].self) }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(words)
    }
}

/// What one rank alone knows (written by every rank as `rank-RRRRR-of-WWWWW.json`): its
/// place in the data, its random generators, its partial metric sums.
public struct RankTrainingState: Codable, Equatable, Sendable {
    public var rank: Int
    public var worldSize: Int
    /// The sampler's position, in global batches (equal on every rank).
    public var cursor: DistributedSampler.Cursor
    /// Generators by purpose: `posterior_noise`, `model_dropout`, later `condition_dropout`.
    public var generators: [String: GeneratorState]
    public var metricWindow: MetricWindow
    /// XXH64 (hex) of this rank's parameters and buffers (`ReplicaDigest`): equal on every
    /// rank of a healthy data-parallel job. Absent in state re-derived for another world size.
    public var parameterDigest: String?

    enum CodingKeys: String, CodingKey {
        case rank, cursor, generators
        case worldSize = "world_size", metricWindow = "metric_window", parameterDigest = "parameter_digest"
    }

    public init(rank: Int, worldSize: Int, cursor: DistributedSampler.Cursor, generators: [String: RandomGenerator],
                metricWindow: MetricWindow, parameterDigest: UInt64? = nil) {
        self.rank = rank
        self.worldSize = worldSize
        self.cursor = cursor
        self.generators = generators.mapValues(GeneratorState.init)
        self.metricWindow = metricWindow
        self.parameterDigest = parameterDigest.map { XXH64.hexString($0) }
    }

    public static func fileName(rank: Int, worldSize: Int) -> String {
        "rank-\(pad(rank))-of-\(pad(worldSize)).json"
    }

    static func pad(_ n: Int) -> String {
        let digits = String(n)
        return String(repeating: "0", count: max(0, 5 - digits.count)) + digits
    }

    /// Every saved rank's state, checked for consistency.
    public static func readAll(from checkpoint: TrainingCheckpoint) throws -> [RankTrainingState] {
        let world = checkpoint.worldSize
        let states = try (0..<world).map { r in
            try checkpoint.json(RankTrainingState.self, fileName(rank: r, worldSize: world))
        }
        for (r, s) in states.enumerated() where s.rank != r || s.worldSize != world {
            throw TrainingCheckpointError(path: checkpoint.directory.path, file: fileName(rank: r, worldSize: world),
                                          "says rank \(s.rank) of \(s.worldSize), expected rank \(r) of \(world)")
        }
        if let first = states.first, let other = states.first(where: { $0.cursor != first.cursor }) {
            throw TrainingCheckpointError(path: checkpoint.directory.path, file: fileName(rank: other.rank, worldSize: world),
                                          "data cursor (\(other.cursor)) differs from rank 0's (\(first.cursor))")
        }
        return states
    }

    /// Key mixed into generators re-derived for a new world size ("reshard").
    static let reshardKey: UInt64 = 0x7265_7368_6172_64

    /// This rank's state in a world of `worldSize` from the saved ranks' states.
    ///
    /// Same world size: rank r continues with saved rank r's state, exactly. Another world
    /// size: the cursor (global batches, equal on all ranks) carries over as is; new rank r's
    /// generators are derived from saved rank (r mod old size)'s with the new world size and
    /// r as keys (deterministic, distinct per rank, but not the streams an uninterrupted run
    /// at either size would have drawn); the metric window is the mean of the saved ones.
    ///
    /// `replicated`: keys of generators that are the same on every rank (each rank draws the
    /// global batch's values and keeps its slice); they carry over unchanged, exactly.
    public static func resharded(_ saved: [RankTrainingState], rank: Int, worldSize: Int,
                                 file: String, replicated: Set<String> = []) throws -> RankTrainingState {
        precondition(!saved.isEmpty && rank >= 0 && rank < worldSize, "resharded: rank \(rank) of \(worldSize), \(saved.count) saved")
        if saved.count == worldSize { return saved[rank] }
        let source = saved[rank % saved.count]
        var generators: [String: RandomGenerator] = [:]
        for (key, state) in source.generators {
            let generator = try state.generator(file: file, key: key)
            generators[key] = replicated.contains(key) ? generator : generator.derived(reshardKey, UInt64(worldSize), UInt64(rank))
        }
        return RankTrainingState(rank: rank, worldSize: worldSize, cursor: source.cursor, generators: generators,
                                 metricWindow: MetricWindow.merged(saved.map(\.metricWindow)))
    }

    public func generator(_ key: String, file: String) throws -> RandomGenerator {
        guard let state = generators[key] else {
            throw TrainingCheckpointError(path: file, "generators.\(key): missing")
        }
        return try state.generator(file: file, key: "generators.\(key)")
    }
}

/// What the whole run knows at a checkpoint (written by rank 0 as `trainer_state.json`).
public struct TrainingStateRecord: Codable, Equatable, Sendable {
    public static let fileName = "trainer_state.json"

    /// Which trainer wrote it: "autoencoder", later "ldm", "precompute-latents".
    public var trainer: String
    public var step: Int
    public var worldSize: Int
    public var batchPerRank: Int
    /// Samples per micro-batch over all ranks: what the sampler's cursor counts in.
    public var globalBatchSize: Int
    public var accumulateGradBatches: Int
    /// Model initialisation and data order seed.
    public var seed: UInt64
    public var dataset: String
    public var datasetCount: Int
    /// XXH64 of the config with the keys that may change on resume left out.
    public var configFingerprint: String
    /// XXH64 of every saved tensor's name and shape.
    public var modelFingerprint: String
    /// The effective configuration (file plus command-line overrides) as JSON.
    public var config: String
    /// The configuration file as given, verbatim (also saved as config.yaml).
    public var configSource: String?
    /// The latent scale factor (LDM).
    public var scaleFactor: Float?
    /// EMA updates so far (trainers with an EMA).
    public var emaUpdateCount: Int?
    /// The compute backend the run computed with ("onednn", "openblas"); absent in older states.
    public var computeBackend: String?
    /// The oneDNN backend's convolution algorithm ("winograd", "direct"); absent on OpenBLAS
    /// and in older states.
    public var convolutionAlgorithm: String?

    enum CodingKeys: String, CodingKey {
        case trainer, step, seed, dataset, config
        case worldSize = "world_size", batchPerRank = "batch_per_rank", globalBatchSize = "global_batch_size"
        case accumulateGradBatches = "accumulate_grad_batches", datasetCount = "dataset_count"
        case configFingerprint = "config_fingerprint", modelFingerprint = "model_fingerprint"
        case configSource = "config_source", scaleFactor = "scale_factor", emaUpdateCount = "ema_update_count"
        case computeBackend = "compute_backend", convolutionAlgorithm = "convolution_algorithm"
    }
}
