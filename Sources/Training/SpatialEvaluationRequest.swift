import Data
import Diffusion
import Distributed
import Evaluation
import Foundation
import Models
import Tensor

/// What `ldm evaluate ldm` does for a super-resolution or inpainting model: the first `count`
/// held-out images (ranks split them) through the model, against the baseline a user would
/// otherwise have and the first stage's own reconstruction (the ceiling of any latent model):
/// - super-resolution: PSNR/SSIM of the model's output, of bicubic upsampling and of the
///   autoencoder's reconstruction, each against the original;
/// - inpainting (a fixed mask per image, drawn from the seed and its position): inside the
///   mask, L1 (pixels in [0, 1]) of the model's fill and of the mean fill (the mean of the
///   image's kept pixels), LPIPS of both composites; outside it, L1 of the model's raw decoding
///   next to the autoencoder's reconstruction (what "unchanged" can mean through a first stage).
public struct SpatialEvaluationRequest {
    public var model: String
    public var weights = "ema"
    public var autoencoder: String?
    public var dataConfig: String
    public var lpipsWeights = LPIPS.defaultWeightsPath
    public var count = 500
    public var sampler = "ddim"
    public var steps = 50
    public var eta = 0.0
    public var seed: UInt64 = 0
    public var batchSize = 50
    /// Inpainting: hold the latent cells the mask leaves untouched to the image's own latent
    /// while sampling (the reference DDIM sampler's mask and x0).
    public var holdKnown = true
    public var output: URL

    public init(model: String, dataConfig: String, output: URL) {
        self.model = model
        self.dataConfig = dataConfig
        self.output = output
    }

    public struct Report: Codable {
        public var model: String
        public var task: String
        public var autoencoder: String
        public var images: String
        public var count: Int
        public var sampler: String
        public var steps: Int
        public var seed: UInt64
        public var worldSize: Int
        public var holdKnown: Bool?
        public var metrics: [String: MetricSummary]
        public var grid: String?
        public var seconds: Double

        enum CodingKeys: String, CodingKey {
            case model, task, autoencoder, images, count, sampler, steps, seed, metrics, grid, seconds
            case worldSize = "world_size", holdKnown = "hold_known"
        }
    }

    static let superResolutionMetrics = ["psnr", "ssim", "psnr_bicubic", "ssim_bicubic", "psnr_autoencoder", "ssim_autoencoder"]
    static let inpaintingMetrics = ["l1_mask", "l1_mask_mean_fill", "lpips", "lpips_mean_fill", "l1_outside",
                                    "l1_outside_autoencoder", "mask_coverage"]

    @discardableResult
    public func run(communicator: Communicator) throws -> Report {
        let say = { (message: String) in if communicator.isRoot { print(message); fflush(stdout) } }
        let started = ProgressReporter.now()
        let trained = try TrainedLatentDiffusion.load(model, weights: weights, autoencoder: autoencoder)
        let conditioning = trained.model.config.conditioning
        guard let spatial = conditioning.spatial, conditioning.usesConcat else {
            throw SampleError("\(trained.url.path) has no spatial condition")
        }
        if conditioning.isTextConditional {
            throw SampleError("\(trained.url.path) is a hybrid text model: evaluate it with `ldm sample --prompt` and your own inputs")
        }
        let data = try DataConfig.load(fromConfigFile: URL(fileURLWithPath: dataConfig))
        guard let dataset = try data.validationSet() else { throw ConfigError(file: dataConfig, "no held-out images: set data.validation_path") }
        let firstStage = trained.firstStage
        guard dataset.channels == firstStage.config.inChannels, dataset.height == firstStage.config.resolution,
              dataset.width == firstStage.config.resolution else {
            throw ConfigError(file: dataConfig, "its images are \(dataset.channels)×\(dataset.height)×\(dataset.width), the model's first "
                + "stage takes \(firstStage.config.inChannels)×\(firstStage.config.resolution)×\(firstStage.config.resolution)")
        }
        guard count >= 1 else { throw SampleError("--n \(count): need at least one image") }
        let total = min(count, dataset.count)
        var perceptual: LPIPS?
        if spatial.task == .inpainting {
            if FileManager.default.fileExists(atPath: lpipsWeights) { perceptual = try LPIPS.pretrained(at: URL(fileURLWithPath: lpipsWeights)) }
            else { say("note: no LPIPS weights at \(lpipsWeights) (Launch/fetch_lpips_weights.sh): LPIPS is skipped") }
        }
        let sampling = try TrainedLatentDiffusion.sampling(sampler: sampler, steps: steps, eta: eta, guidance: 1, seed: seed,
                                                           schedule: trained.model.schedule)
        let names = spatial.task == .superResolution ? Self.superResolutionMetrics : Self.inpaintingMetrics
        var accumulator = MetricAccumulator(names: names)
        let ssim = SSIM()
        let share = evaluationShard(count: total, rank: communicator.rank, worldSize: communicator.size)
        say("evaluate \(spatial.task.rawValue): \(total) held-out images of \(dataset.identity) (\(sampler) \(steps) steps, seed \(seed)"
            + (spatial.task == .inpainting ? ", known latent cells \(holdKnown ? "held" : "free")" : "") + ") on \(communicator.size) rank(s)")
        var gridRows: [Tensor] = []
        var done = 0
        for start in stride(from: share.lowerBound, to: share.upperBound, by: batchSize) {
            let positions = Array(start..<min(start + batchSize, share.upperBound))
            let (images, labels) = try dataset.batch(positions)
            let inputs: Tensor, condition: Tensor
            var masks: [InpaintingMask]?, known: KnownLatents?
            switch spatial.task {
            case .superResolution:
                let low = try positions.map { SpatialInputs.lowResolution(try dataset.image(at: $0), factor: spatial.factor) }
                inputs = SpatialInputs.tensor(low.map { $0.resized(width: dataset.width, height: dataset.height, filter: .bicubic) })
                condition = try SpatialInputs.superResolution(low, latentShape: trained.latentShape, channels: dataset.channels)
            case .inpainting:
                masks = positions.map {
                    SpatialInputs.heldOutMask(seed: seed, position: $0, width: dataset.width, height: dataset.height,
                                              boxFraction: spatial.boxFraction)
                }
                inputs = SpatialInputs.blanked(images, masks: masks!)
                condition = SpatialInputs.inpainting(images: images, masks: masks!, firstStage: firstStage,
                                                     scaleFactor: trained.model.scaleFactor, latentShape: trained.latentShape)
                if holdKnown {
                    known = SpatialInputs.knownLatents(images: images, masks: masks!, firstStage: firstStage,
                                                       scaleFactor: trained.model.scaleFactor, latentShape: trained.latentShape)
                }
            }
            let latents = try sampling.sampleLatents(trained.model, latentShape: trained.latentShape, indices: positions,
                                                     labels: conditioning.isClassConditional ? labels : nil, spatial: condition,
                                                     known: known)
            let decoded = LatentDiffusionSampling.decode(latents, scaleFactor: trained.model.scaleFactor, firstStage: firstStage)
            let reconstruction = withoutGrad { firstStage.reconstruct(images).clamped(min: -1, max: 1) }
            var outputs = decoded
            switch spatial.task {
            case .superResolution:
                accumulator.add("psnr", PSNR.perImage(decoded, images))
                accumulator.add("ssim", ssim.perImage(decoded, images))
                accumulator.add("psnr_bicubic", PSNR.perImage(inputs, images))
                accumulator.add("ssim_bicubic", ssim.perImage(inputs, images))
                accumulator.add("psnr_autoencoder", PSNR.perImage(reconstruction, images))
                accumulator.add("ssim_autoencoder", ssim.perImage(reconstruction, images))
            case .inpainting:
                let masks = masks!
                outputs = SpatialInputs.composite(generated: decoded, original: images, masks: masks)
                let meanFill = Self.meanFilled(images, masks: masks)
                accumulator.add("l1_mask", Self.maskedL1(outputs, images, masks: masks, inside: true))
                accumulator.add("l1_mask_mean_fill", Self.maskedL1(meanFill, images, masks: masks, inside: true))
                accumulator.add("l1_outside", Self.maskedL1(decoded, images, masks: masks, inside: false))
                accumulator.add("l1_outside_autoencoder", Self.maskedL1(reconstruction, images, masks: masks, inside: false))
                accumulator.add("mask_coverage", masks.map(\.coverage))
                if let perceptual {
                    accumulator.add("lpips", withoutGrad { perceptual(images, outputs) }.scalars.map(Double.init))
                    accumulator.add("lpips_mean_fill", withoutGrad { perceptual(images, meanFill) }.scalars.map(Double.init))
                }
            }
            if communicator.isRoot && gridRows.isEmpty {
                let k = min(8, positions.count)
                gridRows = [inputs, outputs, images].map { $0.slice(alongAxis: 0, 0..<k) }
            }
            done += positions.count
            let elapsed = ProgressReporter.now() - started
            say(String(format: "evaluate: rank 0 %d/%d | %.2f s/image | eta %@", done, share.count, elapsed / Double(done),
                       ProgressReporter.duration(elapsed / Double(done) * Double(share.count - done))))
        }
        let summaries = try accumulator.reduced(over: communicator)
        var gridPath: String?
        if communicator.isRoot, !gridRows.isEmpty {
            let url = output.deletingPathExtension().appendingPathExtension("png")
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            let columns = gridRows[0].shape[0]
            try ImageGrid.write(ImageGrid.enlarged(Tensor.concatenate(gridRows, alongAxis: 0), minimumWidth: 600, columns: columns),
                                to: url, columns: columns)
            gridPath = url.path
        }
        let report = Report(model: trained.url.path, task: spatial.task.rawValue, autoencoder: trained.firstStagePath,
                            images: dataset.identity, count: total, sampler: sampler, steps: steps, seed: seed,
                            worldSize: communicator.size, holdKnown: spatial.task == .inpainting ? holdKnown : nil, metrics: summaries, grid: gridPath, seconds: ProgressReporter.now() - started)
        if communicator.isRoot {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try AtomicWrite.write(try encoder.encode(report) + Data("\n".utf8), to: output)
            for name in names { if let m = summaries[name]?.mean { print(name.padding(toLength: 24, withPad: " ", startingAt: 0) + String(format: "%.4f", m)) } }
            if let gridPath {
                print("grid: \(gridPath) (rows: " + (spatial.task == .superResolution ? "bicubic upsampling" : "masked input")
                    + ", model, original)")
            }
            print("report: \(output.path)")
        }
        return report
    }

    /// Mean |a − b| per image over the masked (inside) or kept pixels, on the [0, 1] pixel scale.
    static func maskedL1(_ a: Tensor, _ b: Tensor, masks: [InpaintingMask], inside: Bool) -> [Double] {
        let (n, c, plane) = (a.shape[0], a.shape[1], a.shape[2] * a.shape[3])
        return (0..<n).map { i in
            var sum = 0.0, count = 0
            for ch in 0..<c {
                for p in 0..<plane where (masks[i].values[p] > 0) == inside {
                    let k = (i * c + ch) * plane + p
                    sum += Double(abs(a.pointer[k] - b.pointer[k])) / 2
                    count += 1
                }
            }
            return count > 0 ? sum / Double(count) : 0
        }
    }

    /// The baseline fill: every masked pixel set to the mean of the image's kept pixels.
    static func meanFilled(_ images: Tensor, masks: [InpaintingMask]) -> Tensor {
        let (n, c, plane) = (images.shape[0], images.shape[1], images.shape[2] * images.shape[3])
        let out = images.copy()
        for i in 0..<n {
            for ch in 0..<c {
                var sum = 0.0, count = 0
                for p in 0..<plane where masks[i].values[p] == 0 { sum += Double(images.pointer[(i * c + ch) * plane + p]); count += 1 }
                let mean = Float(count > 0 ? sum / Double(count) : 0)
                for p in 0..<plane where masks[i].values[p] > 0 { out.pointer[(i * c + ch) * plane + p] = mean }
            }
        }
        return out
    }
}
