import ArgumentParser
import Distributed
import Foundation
import Training

/// `ldm train-autoencoder --config FILE`: the first stage.
struct TrainAutoencoderCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-autoencoder",
        abstract: "Train a KL or VQ autoencoder with L1 + LPIPS + PatchGAN losses.")

    @Option(name: .long, help: "YAML config (see Configs/).")
    var config: String

    @Option(name: .long, help: "Override trainer.max_steps.")
    var maxSteps: Int?

    @Option(name: .long, help: "Override trainer.run_dir.")
    var runDir: String?

    @Option(name: .long, help: "LPIPS weights (safetensors).")
    var lpipsWeights: String = "Checkpoints/pretrained/lpips_vgg16.safetensors"

    func run() throws {
        let communicator = try Communicators.make()
        var settings = try ConfigLoader.load(AutoencoderTrainingConfig.self, from: URL(fileURLWithPath: config))
        if let maxSteps { settings.trainer.maxSteps = maxSteps }
        if let runDir { settings.trainer.runDirectory = runDir }
        RankFailure.guarding("train-autoencoder", communicator: communicator) {
            let trainer = try AutoencoderTrainer(config: settings, communicator: communicator,
                                                 lpipsWeights: URL(fileURLWithPath: lpipsWeights))
            try trainer.train()
            try trainer.evaluateHeldOut()
        }
    }
}
