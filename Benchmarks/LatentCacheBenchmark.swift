import Data
import Distributed
import Foundation
import LatentCache
import Models
import Tensor

/// `Benchmarks latentcache`: precompute throughput, reader throughput and compression ratio.
///
/// The encoder has the architecture of Configs/autoencoder_kl_f4_fashion_mnist.yaml (random
/// weights unless LDM_BENCH_AUTOENCODER names a trained one) and encodes the first
/// LDM_BENCH_IMAGES (default 4096) Fashion-MNIST training images.
enum LatentCacheBenchmark {
    static func run() {
        do { try measure() } catch { print("latentcache: \(error)") }
    }

    static func measure() throws {
        let environment = ProcessInfo.processInfo.environment
        let count = Int(environment["LDM_BENCH_IMAGES"] ?? "") ?? 4096
        // LDM_BENCH_WORKDIR keeps the autoencoder and cache (to time `ldm precompute-latents` on them).
        let keep = environment["LDM_BENCH_WORKDIR"]
        let work = keep.map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("latentcache-bench-\(getpid())")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { if keep == nil { try? FileManager.default.removeItem(at: work) } }

        let weights: URL
        if let trained = environment["LDM_BENCH_AUTOENCODER"] {
            weights = URL(fileURLWithPath: trained)
        } else {
            var config = AutoencoderConfig()   // Configs/autoencoder_kl_f4_fashion_mnist.yaml
            config.regularizer = .kl
            config.resolution = 32
            config.inChannels = 1
            config.outChannels = 1
            config.ch = 32
            config.chMult = [1, 2, 4]
            config.numResBlocks = 1
            config.zChannels = 4
            config.embedDim = 4
            var g = RandomGenerator(seed: 23)
            weights = work.appendingPathComponent("autoencoder.safetensors")
            try FirstStageModel.save(FirstStageModel(config, generator: &g), config: config, step: 0, to: weights)
        }
        let train = DatasetPrefix(try FashionMNIST(split: .train, resolution: 32, fit: .pad), count: count)
        let cache = work.appendingPathComponent("cache")
        var options = PrecomputeOptions()
        options.shardSize = 256
        let precomputer = try LatentPrecomputer(autoencoder: weights, splits: [CacheSplitSource(name: "train", dataset: train)],
                                                preprocessing: .init(resolution: 32, fit: "pad", channels: 1), directory: cache,
                                                options: options, communicator: SingleProcessCommunicator())
        let report = try precomputer.run()
        print(String(format: "latentcache: precompute %d images (%@, batch %d, fp16, zstd 3): %.1f s, %.0f images/s",
                     count, environment["LDM_BENCH_AUTOENCODER"] == nil ? "random weights" : "trained weights",
                     options.batchSize, report.seconds, Double(count) / report.seconds))

        let manifest = try LatentCacheManifest.read(from: cache)
        let raw = count * manifest.latentSize * manifest.stored.fieldCount * 4
        let stored = manifest.shards.reduce(0) { $0 + $1.bytes }
        print(String(format: "latentcache: %d bytes fp32 raw (mean+logvar %@) -> %d bytes: %.2fx (fp16 + byte shuffle + zstd 3)",
                     raw, "\(manifest.latentShape)", stored, Double(raw) / Double(stored)))

        // The same latents at other settings (re-encoding the decoded shards).
        let shards = try manifest.shards.map { try LatentCacheReader.readShard($0, in: cache, manifest: manifest) }
        for level in [1, 9, 19] {
            let bytes = try shards.reduce(0) { $0 + (try ShardCodec.encode($1, dtype: .float16, level: level)).count }
            print(String(format: "latentcache:   fp16 zstd %2d: %.2fx", level, Double(raw) / Double(bytes)))
        }
        // Without the shuffle: plain fp16 bytes through zstd 3.
        var unshuffled = 0
        for shard in shards {
            var half = [UInt16]()
            for field in shard.fields { half += field.map { Float16($0).bitPattern } }
            unshuffled += try half.withUnsafeBytes { try ShardCodec.compressForComparison($0, level: 3) }.count
        }
        print(String(format: "latentcache:   fp16 zstd  3 without byte shuffle (latents only): %.2fx", Double(raw) / Double(unshuffled)))

        // Reader: one epoch of shuffled batches of 64, decompressing and verifying each shard.
        let batches = count / 64
        let readSeconds = BenchmarkSuite.time(repeats: 3) {
            let reader = try! LatentCacheReader(directory: cache, globalBatchSize: 64, seed: 1, window: 4)
            var sink: Float = 0
            var g = RandomGenerator(seed: 2)
            for _ in 0..<batches { sink += try! reader.nextBatch().sample(generator: &g).pointer[0] }
            if sink.isNaN { print("") }
        }
        print(String(format: "latentcache: reader (window 4, LRU 8 shards, checksum + zstd + fp16 decode + fresh z): %.0f latents/s",
                     Double(batches * 64) / readSeconds))
    }
}
