import ArgumentParser
import Data
import Distributed
import Foundation
import LatentCache
import Training

/// `ldm precompute-latents`: encode the training and held-out images once with the frozen
/// first stage, into a sharded, compressed latent cache the LDM trainer streams from.
struct PrecomputeLatentsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "precompute-latents",
        abstract: "Encode a dataset with a trained autoencoder into a zstd-compressed, sharded latent cache.",
        discussion: """
            Under mpirun every rank encodes and writes its own shards; rank 0 writes manifest.json \
            last. Rerunning the same command finishes an interrupted cache, skipping complete shards.
            """)

    @Option(name: .long, help: "Autoencoder weights written by `ldm train-autoencoder` (safetensors).")
    var autoencoder: String

    @Option(name: .long, help: "YAML config whose `data` section names the dataset (e.g. Configs/autoencoder_kl_f4_fashion_mnist.yaml).")
    var dataConfig: String?

    @Option(name: .long, help: "Instead of --data-config: fashion-mnist.")
    var dataset: String?

    @Option(name: .long, help: "Instead of --data-config: a folder of PNG training images.")
    var images: String?

    @Option(name: .long, help: "Held-out PNG images for --images (Fashion-MNIST uses its test split).")
    var validationImages: String?

    @Option(name: .long, help: "Directory of the Fashion-MNIST IDX files (default /usr/share/datasets/fashion-mnist).")
    var dataPath: String?

    @Option(name: .long, help: "Image channels with --dataset/--images (1 or 3).")
    var channels: Int?

    @Option(name: .long, help: "Image side in pixels with --dataset/--images.")
    var resolution: Int?

    @Option(name: .long, help: "pad, resize-crop or stretch, with --dataset/--images.")
    var fit: String?

    @Option(name: .long, help: "Cache directory to create or complete.")
    var out: String

    @Option(name: .long, help: "Samples per shard.")
    var shardSize: Int = 1024

    @Option(name: .long, help: "Storage type of the latents: fp16 or fp32.")
    var dtype: String = "fp16"

    @Option(name: .long, help: "zstd compression level.")
    var zstdLevel: Int = 3

    @Option(name: .long, help: "Images per encoder call.")
    var batchSize: Int = 64

    @Option(name: .long, help: "Encode only the first N images of each split (quick runs).")
    var limit: Int?

    @Option(name: .long, help: "Captions for --images: `txt` (a .txt beside each image) or a JSONL/CSV file (path, caption).")
    var captions: String?

    @Option(name: .long, help: "With --captions txt: use the line `KEY: caption` of each .txt instead of its first line.")
    var captionKey: String?

    @Flag(name: .long, help: "Store no caption for images without one (trained as the empty caption) instead of failing.")
    var allowMissingCaptions = false

    @Flag(name: .long, help: "Skip the held-out split.")
    var noValidation = false

    func dataSettings() throws -> DataConfig {
        let flagsGiven = dataset != nil || images != nil
        if let dataConfig {
            guard !flagsGiven else { throw ValidationError("give either --data-config or --dataset/--images, not both") }
            return try DataConfig.load(fromConfigFile: URL(fileURLWithPath: dataConfig))
        }
        var settings = DataConfig()
        switch (dataset, images) {
        case (nil, nil): throw ValidationError("name the data: --data-config FILE, --dataset fashion-mnist or --images DIR")
        case (.some, .some): throw ValidationError("give either --dataset or --images, not both")
        case (let name?, nil):
            guard let kind = DataConfig.Kind(rawValue: name), kind == .fashionMNIST else {
                throw ValidationError("--dataset \(name): known datasets are fashion-mnist (use --images DIR for a folder)")
            }
            settings.dataset = kind
            settings.path = dataPath
            settings.channels = channels ?? 1
            settings.fit = .pad
        case (nil, let folder?):
            settings.dataset = .imageFolder
            settings.path = folder
            settings.validationPath = validationImages
            settings.channels = channels ?? 3
            settings.fit = .resizeCrop
        }
        if let captions {
            guard settings.dataset == .imageFolder else { throw ValidationError("--captions is for --images folders") }
            settings.captions = CaptionOptions(file: captions == "txt" ? nil : captions, key: captionKey, allowMissing: allowMissingCaptions)
        } else if captionKey != nil || allowMissingCaptions {
            throw ValidationError("--caption-key and --allow-missing-captions need --captions")
        }
        if let resolution { settings.resolution = resolution }
        if let fit {
            guard let value = ImageFit(rawValue: fit) else {
                throw ValidationError("--fit \(fit): use one of \(ImageFit.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            settings.fit = value
        }
        return settings
    }

    func run() throws {
        let communicator = try Communicators.make()
        let settings = try dataSettings()
        guard let storage = LatentDType(rawValue: dtype) else { throw ValidationError("--dtype \(dtype): use fp16 or fp32") }
        var options = PrecomputeOptions()
        options.shardSize = shardSize
        options.dtype = storage
        options.zstdLevel = zstdLevel
        options.batchSize = batchSize
        // Test hook: behave as if killed after this rank wrote N shards.
        if let stop = ProcessInfo.processInfo.environment["LDM_PRECOMPUTE_STOP_AFTER_SHARDS"] {
            guard let n = Int(stop), n >= 0 else { throw ValidationError("LDM_PRECOMPUTE_STOP_AFTER_SHARDS=\(stop) is not a count") }
            options.stopAfterShards = n
        }
        let report = RankFailure.guarding("precompute-latents", communicator: communicator) { () -> PrecomputeReport in
            func limited(_ d: ImageDataset) -> ImageDataset { limit.map { DatasetPrefix(d, count: $0) } ?? d }
            var splits = [CacheSplitSource(name: "train", dataset: limited(try settings.trainingSet()))]
            if !noValidation, let held = try settings.validationSet() {
                splits.append(CacheSplitSource(name: "test", dataset: limited(held)))
            }
            let precomputer = try LatentPrecomputer(
                autoencoder: URL(fileURLWithPath: autoencoder), splits: splits,
                preprocessing: .init(resolution: settings.resolution, fit: settings.fit.rawValue, channels: settings.channels),
                directory: URL(fileURLWithPath: out), options: options, communicator: communicator)
            if communicator.isRoot {
                precomputer.progress = { done, total, images, seconds in
                    guard done == total || done % 5 == 0 else { return }
                    let rate = seconds > 0 ? Double(images) / seconds : 0
                    let eta = done > 0 ? seconds / Double(done) * Double(total - done) : 0
                    print(String(format: "precompute-latents: rank 0 shard %d/%d | %.0f images/s | eta %@", done, total, rate,
                                 ProgressReporter.duration(eta)))
                    fflush(stdout)
                }
            }
            return try precomputer.run()
        }
        let samples = try communicator.allreduce(report.samplesEncoded, op: .sum)
        let written = try communicator.allreduce(report.shardsWritten.count, op: .sum)
        let skipped = try communicator.allreduce(report.shardsSkipped.count, op: .sum)
        if communicator.isRoot {
            let rate = report.seconds > 0 ? Double(samples) / report.seconds : 0
            let manifest = URL(fileURLWithPath: out).appendingPathComponent(LatentCacheManifest.fileName).path
            print("precompute-latents: \(written) shards written, \(skipped) complete shards skipped, \(samples) images encoded in "
                + String(format: "%.1f s (%.0f images/s)", report.seconds, rate) + " on \(communicator.size) rank(s); manifest \(manifest)")
        }
    }
}
