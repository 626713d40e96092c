import ArgumentParser
import Data
import Distributed
import Foundation
import Models
import Training

/// `ldm evaluate autoencoder|ldm`: numbers to compare runs by, on held-out data, alone or as
/// ranks under mpirun (the ranks split the images and the samples; the numbers do not
/// depend on their count).
struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Evaluate a first stage (reconstructions) or a latent diffusion model (samples) on held-out data.",
        subcommands: [EvaluateAutoencoderSubcommand.self, EvaluateLDMCommand.self])
}

/// The options and work of `ldm evaluate autoencoder` (and its older name `evaluate-autoencoder`).
struct AutoencoderEvaluationOptions: ParsableArguments {
    @Option(name: .long, help: "Autoencoder weights written by `ldm train-autoencoder` or `ldm import-vae`.")
    var autoencoder: String

    @Option(name: .long, help: "YAML config whose `data` section names the data.")
    var dataConfig: String

    @Option(name: .long, help: "test (the held-out split) or train.")
    var split: String = "test"

    @Option(name: .long, help: "Evaluate only the first N images.")
    var limit: Int?

    @Option(name: .long, help: "Write the report (JSON) here; the grid goes beside it. Default: evaluation_<split>.json beside the autoencoder.")
    var out: String?

    @Option(name: .long, help: "LPIPS weights (safetensors): LPIPS and the VGG16 feature space; both are skipped when the file is missing.")
    var lpipsWeights: String = LPIPS.defaultWeightsPath

    @Option(name: .long, help: "Evaluation classifier (`ldm train-classifier`): adds an rFD in its feature space.")
    var classifier: String?

    func run() throws {
        let communicator = try Communicators.make()
        let data = try DataConfig.load(fromConfigFile: URL(fileURLWithPath: dataConfig))
        RankFailure.guarding("evaluate autoencoder", communicator: communicator) {
            let model = try FirstStageModel.load(from: URL(fileURLWithPath: autoencoder))
            let images: ImageDataset
            switch split {
            case "test":
                guard let heldOut = try data.validationSet() else {
                    throw ConfigError(file: dataConfig, "no held-out split: set data.validation_path")
                }
                images = heldOut
            case "train": images = try data.trainingSet()
            default: throw ConfigError(file: dataConfig, "--split \(split): use test or train")
            }
            let lpipsURL = URL(fileURLWithPath: lpipsWeights)
            let haveLPIPS = FileManager.default.fileExists(atPath: lpipsURL.path)
            let perceptual = haveLPIPS ? try LPIPS.pretrained(at: lpipsURL) : nil
            var networks: [FeatureNetwork] = []
            if let classifier {
                let (net, _, fingerprint) = try EvaluationClassifier.load(from: URL(fileURLWithPath: classifier))
                try ClassifierEvaluation.check(net, file: classifier, channels: images.channels, resolution: images.height, classCount: nil)
                networks.append(ClassifierFeatures(classifier: net, fingerprint: fingerprint))
            }
            if haveLPIPS { networks.append(try VGGFeatures.load(from: lpipsURL)) }
            var evaluator = AutoencoderEvaluator(model: model, perceptual: perceptual, communicator: communicator)
            if !networks.isEmpty {
                evaluator.featureMetrics = GenerationMetrics(networks: networks, classifier: nil, communicator: communicator)
            }
            let result = try evaluator.evaluate(images, limit: limit)
            guard communicator.isRoot else { return }
            print("evaluation of \(autoencoder) on \(images.identity) (\(result.imageCount) images, "
                + "\(String(format: "%.1f", result.seconds)) s): \(result.line)")
            if perceptual == nil { print("lpips and the VGG16 rFD skipped: no weights at \(lpipsWeights) (Launch/fetch_lpips_weights.sh)") }
            let report = URL(fileURLWithPath: out ?? URL(fileURLWithPath: autoencoder).deletingLastPathComponent()
                .appendingPathComponent("evaluation_\(split).json").path)
            try evaluator.report(result, split: images.identity, step: 0).write(to: report)
            let grid = report.deletingPathExtension().appendingPathExtension("png")
            try evaluator.writeGrid(images, to: grid)
            print("report: \(report.path)\ngrid: \(grid.path) (originals above, reconstructions below)")
        }
    }
}

struct EvaluateAutoencoderSubcommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "autoencoder",
        abstract: "PSNR, SSIM, LPIPS and the reconstruction Fréchet distance (rFD) of an autoencoder on a split.")

    @OptionGroup var options: AutoencoderEvaluationOptions

    func run() throws { try options.run() }
}

/// The older name, kept so scripts keep working.
struct EvaluateAutoencoderCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate-autoencoder",
        abstract: "Same as `ldm evaluate autoencoder`.")

    @OptionGroup var options: AutoencoderEvaluationOptions

    func run() throws { try options.run() }
}

struct EvaluateLDMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ldm",
        abstract: "Held-out diffusion loss, and FD, precision/recall, sample accuracy and an IS-style score of samples.")

    @Option(name: .long, help: "A train-ldm run directory or model file.")
    var ldm: String

    @Option(name: .long, help: "ema (ldm.safetensors) or trained (ldm_nonema.safetensors), for a run directory.")
    var weights: String = "ema"

    @Option(name: .long, help: "The first stage (default: the one the model records; checked by fingerprint).")
    var autoencoder: String?

    @Option(name: .long, help: "Latent cache for the held-out diffusion loss (default: the one the model records).")
    var cache: String?

    @Option(name: .long, help: "YAML config whose `data` section names the held-out real images.")
    var dataConfig: String

    @Option(name: .long, help: "Evaluation classifier (`ldm train-classifier`): its feature space, sample accuracy, IS-style score.")
    var classifier: String?

    @Option(name: .long, help: "Feature spaces: classifier, vgg, or both (comma-separated).")
    var features: String?

    @Option(name: .customLong("n"), help: "Samples per class (per guidance scale); unconditional models: samples in all; super-resolution and inpainting models: held-out images.")
    var perClass: Int = 100

    @Option(name: .long, help: "ddim or ddpm.")
    var sampler: String = "ddim"

    @Option(name: .long, help: "DDIM steps.")
    var steps: Int = 50

    @Option(name: .long, help: "DDIM eta (0: deterministic).")
    var eta: Double = 0

    @Option(name: .long, help: "Classifier-free guidance scale(s), e.g. 3 or a sweep 1,2,3,5.")
    var guidance: String = "3"

    @Option(name: .long, help: "Seed of the samples' noise.")
    var seed: UInt64 = 0

    @Option(name: .long, help: "Held-out latents for the diffusion loss (0: the whole test split).")
    var heldoutSamples: Int = 0

    @Option(name: .long, help: "Use only the first N real held-out images for the reference statistics.")
    var realLimit: Int?

    @Option(name: .long, help: "LPIPS weights (the VGG16 feature space).")
    var lpipsWeights: String = LPIPS.defaultWeightsPath

    @Option(name: .long, help: "Write the report (JSON) here; grids go beside it. Default: <run>/evaluation.json.")
    var out: String?

    @Flag(inversion: .prefixedNo, help: "Inpainting models: hold the latent cells outside the mask to the image's own latent while sampling.")
    var holdKnown = true

    func run() throws {
        let communicator = try Communicators.make()
        RankFailure.guarding("evaluate ldm", communicator: communicator) {
            var isDirectory: ObjCBool = false
            let runDirectory = FileManager.default.fileExists(atPath: ldm, isDirectory: &isDirectory) && isDirectory.boolValue
                ? ldm : (ldm as NSString).deletingLastPathComponent
            let output = URL(fileURLWithPath: out ?? (runDirectory as NSString).appendingPathComponent("evaluation.json"))
            if try TrainedLatentDiffusion.config(of: ldm, weights: weights).conditioning.usesConcat {
                // Super-resolution or inpainting: scored against the originals, --n images.
                var request = SpatialEvaluationRequest(model: ldm, dataConfig: dataConfig, output: output)
                request.weights = weights
                request.autoencoder = autoencoder
                request.lpipsWeights = lpipsWeights
                request.count = perClass
                request.sampler = sampler
                request.steps = steps
                request.eta = eta
                request.seed = seed
                request.holdKnown = holdKnown
                try request.run(communicator: communicator)
                return
            }
            var request = LDMEvaluationRequest(model: ldm, dataConfig: dataConfig, output: output)
            request.weights = weights
            request.autoencoder = autoencoder
            request.cache = cache
            request.classifier = classifier
            request.features = features.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
                ?? (classifier == nil ? ["vgg"] : ["classifier", "vgg"])
            request.perClass = perClass
            request.sampler = sampler
            request.steps = steps
            request.eta = eta
            request.guidance = try LDMEvaluationRequest.parseGuidance(guidance)
            request.seed = seed
            request.heldOutSamples = heldoutSamples
            request.realLimit = realLimit
            request.lpipsWeights = lpipsWeights
            try request.run(communicator: communicator)
        }
    }
}
