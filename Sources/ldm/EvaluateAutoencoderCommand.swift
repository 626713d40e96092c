import ArgumentParser
import Distributed
import Foundation
import Models
import Training

/// `ldm evaluate-autoencoder`: reconstruction quality of a trained first stage on held-out
/// images, alone or as ranks under mpirun.
struct EvaluateAutoencoderCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate-autoencoder",
        abstract: "PSNR, SSIM and LPIPS of an autoencoder's reconstructions on a held-out split.")

    @Option(name: .long, help: "Autoencoder weights written by `ldm train-autoencoder` or `ldm import-vae`.")
    var autoencoder: String

    @Option(name: .long, help: "YAML config whose `data` section names the data (its held-out split is evaluated).")
    var dataConfig: String

    @Option(name: .long, help: "Evaluate only the first N held-out images.")
    var limit: Int?

    @Option(name: .long, help: "Write the report (JSON) here.")
    var out: String?

    @Option(name: .long, help: "LPIPS weights (safetensors); LPIPS is skipped when the file is missing.")
    var lpipsWeights: String = LPIPS.defaultWeightsPath

    func run() throws {
        let communicator = try Communicators.make()
        let data = try DataConfig.load(fromConfigFile: URL(fileURLWithPath: dataConfig))
        RankFailure.guarding("evaluate-autoencoder", communicator: communicator) {
            let model = try FirstStageModel.load(from: URL(fileURLWithPath: autoencoder))
            guard let heldOut = try data.validationSet() else {
                throw ConfigError(file: dataConfig, "no held-out split: set data.validation_path")
            }
            let lpipsURL = URL(fileURLWithPath: lpipsWeights)
            let perceptual = FileManager.default.fileExists(atPath: lpipsURL.path) ? try LPIPS.pretrained(at: lpipsURL) : nil
            let evaluator = AutoencoderEvaluator(model: model, perceptual: perceptual, communicator: communicator)
            let result = try evaluator.evaluate(heldOut, limit: limit)
            guard communicator.isRoot else { return }
            print("evaluation of \(autoencoder) on \(heldOut.identity) (\(result.imageCount) images, "
                + "\(String(format: "%.1f", result.seconds)) s): \(result.line)")
            if perceptual == nil { print("lpips skipped: no weights at \(lpipsWeights) (Launch/fetch_lpips_weights.sh)") }
            if let out { try evaluator.report(result, split: heldOut.identity, step: 0).write(to: URL(fileURLWithPath: out)) }
        }
    }
}
