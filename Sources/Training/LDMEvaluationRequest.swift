import Data
import Distributed
import Evaluation
import Foundation
import LatentCache
import Models
import Tensor

/// What `ldm evaluate ldm` does: the held-out diffusion loss on the cache's test split, then
/// for each guidance scale samples (N per class, ranks splitting them) scored against the
/// held-out real images: FD and precision/recall in every feature network, the evaluation
/// classifier's accuracy on the samples next to its accuracy on the real images, and the
/// Inception-Score-style score. One JSON report, a table on stdout, a grid per guidance scale.
public struct LDMEvaluationRequest {
    public var model: String
    public var weights = "ema"
    public var autoencoder: String?
    public var cache: String?
    public var dataConfig: String
    public var classifier: String?
    public var lpipsWeights = LPIPS.defaultWeightsPath
    /// "classifier", "vgg" or both.
    public var features = ["classifier", "vgg"]
    public var perClass = 100
    public var sampler = "ddim"
    public var steps = 50
    public var eta = 0.0
    public var guidance: [Float] = [3]
    public var seed: UInt64 = 0
    /// Held-out latents for the ε-MSE (0: the whole test split).
    public var heldOutSamples = 0
    /// Real held-out images for the reference statistics (nil: all).
    public var realLimit: Int?
    public var output: URL

    public init(model: String, dataConfig: String, output: URL) {
        self.model = model
        self.dataConfig = dataConfig
        self.output = output
    }

    /// `--guidance 1,2,3,5`.
    public static func parseGuidance(_ text: String) throws -> [Float] {
        let values = text.split(separator: ",").map { Float($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ $0 != nil && $0!.isFinite && $0! >= 0 }) else {
            throw SampleError("--guidance '\(text)': expected one or more comma-separated non-negative scales, e.g. 1,2,3,5")
        }
        return values.map { $0! }
    }

    public struct GuidanceResult: Codable {
        public var guidance: Float
        public var samples: Int
        public var distances: [FeatureDistances]
        public var sampleAccuracy: Double?
        public var inceptionScore: Double?
        public var grid: String?
        public var seconds: Double

        enum CodingKeys: String, CodingKey {
            case guidance, samples, distances, grid, seconds
            case sampleAccuracy = "sample_accuracy", inceptionScore = "inception_score"
        }
    }

    public struct Report: Codable {
        public var model: String
        public var modelStep: String?
        public var autoencoder: String
        public var autoencoderFingerprint: String
        public var cache: String?
        public var heldOut: HeldOutDiffusionLoss.Result?
        public var realImages: String
        public var realCount: Int
        public var realAccuracy: Double?
        public var realInceptionScore: Double?
        public var classifier: String?
        public var classifierFingerprint: String?
        public var sampler: String
        public var steps: Int
        public var eta: Double
        public var perClass: Int
        public var seed: UInt64
        public var worldSize: Int
        public var results: [GuidanceResult]
        public var seconds: Double

        enum CodingKeys: String, CodingKey {
            case model, autoencoder, cache, sampler, steps, eta, seed, results, seconds, classifier
            case modelStep = "model_step", autoencoderFingerprint = "autoencoder_fingerprint", heldOut = "heldout_diffusion_loss"
            case realImages = "real_images", realCount = "real_count", realAccuracy = "real_accuracy"
            case realInceptionScore = "real_inception_score", classifierFingerprint = "classifier_fingerprint"
            case perClass = "per_class", worldSize = "world_size"
        }
    }

    @discardableResult
    public func run(communicator: Communicator) throws -> Report {
        let say = { (message: String) in if communicator.isRoot { print(message); fflush(stdout) } }
        let started = ProgressReporter.now()
        let trained = try TrainedLatentDiffusion.load(model, weights: weights, autoencoder: autoencoder)
        guard perClass >= 1 else { throw SampleError("--n \(perClass): need at least one sample per class") }
        let data = try DataConfig.load(fromConfigFile: URL(fileURLWithPath: dataConfig))
        guard let heldOutImages = try data.validationSet() else {
            throw ConfigError(file: dataConfig, "no held-out images: set data.validation_path")
        }
        // A text model is scored as a class model would be, each class prompted in a phrasing
        // training never saw ("a picture of an ankle boot").
        let isText = trained.model.config.conditioning.isTextConditional
        var labels: [Int]?, captions: [String]?
        var heldOutConditions: ((LatentBatch, [Int]) throws -> ConditionBatch)?
        if isText {
            guard let names = heldOutImages.classNames else {
                throw SampleError("\(trained.url.path) is text-conditional: `ldm evaluate ldm` prompts it with the held-out images' "
                    + "class names, and \(heldOutImages.identity) has none (sample it with `ldm sample --prompt`)")
            }
            let prompt = { (label: Int) in CaptionSource.caption(template: CaptionSource.heldOutTemplates[0], className: names[label]) }
            labels = (0..<names.count).flatMap { Array(repeating: $0, count: perClass) }
            captions = labels!.map(prompt)
            say("text model: each class prompted as \"\(prompt(0))\", …")
            heldOutConditions = { batch, positions in
                let text = try batch.captions.map { $0.map { $0 ?? "" } } ?? batch.labels.map { label in
                    guard names.indices.contains(label) else { throw SampleError("a held-out latent has no caption and no class label") }
                    return prompt(label)
                }
                return ConditionBatch(count: positions.count, labels: batch.labels, captions: text)
            }
        } else {
            labels = try trained.conditions(classes: nil, prompts: nil, perClass: perClass).labels
        }
        let count = labels?.count ?? perClass

        // Feature networks, checked against the images.
        let (classifierModel, classifierFingerprint) = try loadClassifier(heldOut: heldOutImages, labelled: labels != nil)
        var networks: [FeatureNetwork] = []
        for name in features {
            switch name {
            case "classifier":
                guard let classifierModel, let classifierFingerprint else {
                    throw SampleError("--features classifier needs --classifier FILE (train one with `ldm train-classifier`)")
                }
                networks.append(ClassifierFeatures(classifier: classifierModel, fingerprint: classifierFingerprint))
            case "vgg": networks.append(try VGGFeatures.load(from: URL(fileURLWithPath: lpipsWeights)))
            default: throw SampleError("--features \(name): use classifier, vgg or both (comma-separated)")
            }
        }
        if let tooMany = networks.first(where: { $0.featureDimension >= count }) {
            throw SampleError("\(count) samples are too few for a Fréchet distance in \(tooMany.name)'s \(tooMany.featureDimension)-d "
                + "features: use at least \(tooMany.featureDimension + 1) (--n \((tooMany.featureDimension + 1 + count / perClass - 1) / (count / perClass)) per class)")
        }
        let metrics = GenerationMetrics(networks: networks, classifier: classifierModel, communicator: communicator)

        // The held-out diffusion loss on the cache's test split.
        var heldOut: HeldOutDiffusionLoss.Result?
        let cachePath = cache ?? trained.metadata["ldm.cache"]
        if let cachePath {
            let manifest = try LatentCacheManifest.read(from: URL(fileURLWithPath: cachePath))
            guard manifest.autoencoder.fingerprint == trained.firstStageFingerprint else {
                throw LatentCacheError.autoencoderMismatch(cache: cachePath, cached: manifest.autoencoder.fingerprint,
                                                           current: trained.firstStageFingerprint)
            }
            guard manifest.splits.contains(where: { $0.name == "test" && $0.sampleCount > 0 }) else {
                throw SampleError("\(cachePath) has no test split: precompute it with the held-out images "
                    + "(`ldm precompute-latents` writes one when the data has a held-out split)")
            }
            let loss = try HeldOutDiffusionLoss(cache: URL(fileURLWithPath: cachePath), split: "test", samples: heldOutSamples,
                                                seed: 0, batchSize: 64)
            let result = try loss.evaluate(trained.model, communicator: communicator, conditions: heldOutConditions)
            heldOut = result
            say(String(format: "held-out diffusion loss (%d test latents): eps_mse %.5f | by t: ", result.count, result.mse)
                + result.bucketMSE.map { String(format: "%.3f", $0) }.joined(separator: " "))
        } else {
            say("held-out diffusion loss skipped: the model records no cache (give --cache DIR)")
        }

        // Reference statistics of the real held-out images.
        let realStarted = ProgressReporter.now()
        let real = try metrics.features(of: heldOutImages, limit: realLimit)
        say(String(format: "real: %d held-out images of %@ in %@ (%.1f s)%@", real.count, heldOutImages.identity,
                   networks.map(\.name).joined(separator: ", "), ProgressReporter.now() - realStarted,
                   real.scores.map { String(format: "; classifier accuracy %.2f %%", 100 * $0.accuracy) } ?? ""))

        if let tooMany = networks.first(where: { $0.featureDimension >= real.count }) {
            throw SampleError("\(real.count) real held-out images are too few for a Fréchet distance in \(tooMany.name)'s "
                + "\(tooMany.featureDimension)-d features: use at least \(tooMany.featureDimension + 1)")
        }
        var results: [GuidanceResult] = []
        try FileManager.default.createDirectory(at: output.deletingLastPathComponent(), withIntermediateDirectories: true)
        for scale in guidance {
            let t0 = ProgressReporter.now()
            let sampling = try TrainedLatentDiffusion.sampling(sampler: sampler, steps: steps, eta: eta, guidance: scale, seed: seed,
                                                               schedule: trained.model.schedule)
            say("guidance \(scale): sampling \(count) image(s) (\(sampler) \(steps) steps, eta \(eta), seed \(seed)) on \(communicator.size) rank(s)")
            let (images, share) = try trained.sampleImages(sampling, count: count, labels: isText ? nil : labels, captions: captions,
                                                           communicator: communicator, say: say)
            let generated = try metrics.features(ofShare: images, labels: labels.map { Array($0[share]) })
            let distances = try metrics.distances(generated: generated, real: real)
            var gridPath: String?
            if let all = try TrainedLatentDiffusion.gathered(images, communicator: communicator) {
                // At most 10 per row, so a grid stays readable at any --n.
                let columns = min(perClass, 10)
                let rows = labels == nil ? min(10, (count + columns - 1) / columns) : count / perClass
                var picked: [Int] = []
                for r in 0..<rows { for c in 0..<columns where r * (labels == nil ? columns : perClass) + c < count {
                    picked.append(r * (labels == nil ? columns : perClass) + c) } }
                let gridImages = Tensor.concatenate(picked.map { all.slice(alongAxis: 0, $0..<$0 + 1) }, alongAxis: 0)
                let url = output.deletingLastPathComponent().appendingPathComponent(
                    output.deletingPathExtension().lastPathComponent + String(format: "_guidance%g.png", scale))
                try ImageGrid.write(ImageGrid.enlarged(gridImages, minimumWidth: 600, columns: columns), to: url, columns: columns)
                gridPath = url.path
            }
            let result = GuidanceResult(guidance: scale, samples: generated.count, distances: distances,
                                        sampleAccuracy: labels == nil ? nil : generated.scores?.accuracy,
                                        inceptionScore: generated.scores?.inceptionScore, grid: gridPath,
                                        seconds: ProgressReporter.now() - t0)
            results.append(result)
            say(Self.line(result))
        }
        let report = Report(model: trained.url.path, modelStep: trained.metadata["ldm.step"], autoencoder: trained.firstStagePath,
                            autoencoderFingerprint: trained.firstStageFingerprint, cache: cachePath, heldOut: heldOut,
                            realImages: heldOutImages.identity, realCount: real.count,
                            realAccuracy: labels == nil ? nil : real.scores?.accuracy, realInceptionScore: real.scores?.inceptionScore,
                            classifier: classifier, classifierFingerprint: classifierFingerprint, sampler: sampler, steps: steps,
                            eta: eta, perClass: perClass, seed: seed, worldSize: communicator.size, results: results,
                            seconds: ProgressReporter.now() - started)
        if communicator.isRoot {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try AtomicWrite.write(try encoder.encode(report) + Data("\n".utf8), to: output)
            print(Self.table(report))
            print("report: \(output.path)")
        }
        return report
    }

    func loadClassifier(heldOut: ImageDataset, labelled: Bool) throws -> (EvaluationClassifier?, String?) {
        guard let classifier else { return (nil, nil) }
        let (model, metadata, fingerprint) = try EvaluationClassifier.load(from: URL(fileURLWithPath: classifier))
        try ClassifierEvaluation.check(model, file: classifier, channels: heldOut.channels, resolution: heldOut.height,
                                       classCount: heldOut.classNames?.count)
        if let names = heldOut.classNames, let trainedOn = metadata["ldm.classes"], trainedOn != names.joined(separator: ",") {
            throw ConfigError(file: classifier, "trained on the classes \(trainedOn), the held-out images have \(names.joined(separator: ","))")
        }
        return (model, fingerprint)
    }

    static func line(_ r: GuidanceResult) -> String {
        var parts = [String(format: "guidance %g: %d samples", r.guidance, r.samples)]
        for d in r.distances {
            parts.append(String(format: "%@ FD %.3f, precision %.3f, recall %.3f", d.network, d.fd, d.precision, d.recall))
        }
        if let a = r.sampleAccuracy { parts.append(String(format: "sample accuracy %.2f %%", 100 * a)) }
        if let s = r.inceptionScore { parts.append(String(format: "IS-style %.3f", s)) }
        return parts.joined(separator: " | ") + String(format: " (%.1f s)", r.seconds)
    }

    /// The readable summary: one row per guidance scale.
    static func table(_ report: Report) -> String {
        let networks = report.results.first?.distances.map(\.network) ?? []
        var header = ["guidance"]
        for n in networks { header += ["FD \(n)", "P \(n)", "R \(n)"] }
        header += ["accuracy", "IS-style"]
        var rows = [header]
        for r in report.results {
            var row = [String(format: "%g", r.guidance)]
            for d in r.distances { row += [String(format: "%.3f", d.fd), String(format: "%.3f", d.precision), String(format: "%.3f", d.recall)] }
            row += [r.sampleAccuracy.map { String(format: "%.2f %%", 100 * $0) } ?? "-", r.inceptionScore.map { String(format: "%.3f", $0) } ?? "-"]
            rows.append(row)
        }
        if let a = report.realAccuracy {
            var row = ["real"]
            for _ in networks { row += ["-", "-", "-"] }
            row += [String(format: "%.2f %%", 100 * a), report.realInceptionScore.map { String(format: "%.3f", $0) } ?? "-"]
            rows.append(row)
        }
        let widths = (0..<header.count).map { c in rows.map { $0[c].count }.max()! }
        var lines = rows.map { row in zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ") }
        lines.insert(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  "), at: 1)
        var text = ""
        if let h = report.heldOut { text += String(format: "held-out eps_mse %.5f (%d latents)\n", h.mse, h.count) }
        return text + lines.joined(separator: "\n")
    }
}
