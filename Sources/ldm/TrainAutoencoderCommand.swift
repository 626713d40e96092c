import ArgumentParser
import Distributed
import Foundation
import Training

/// `ldm train-autoencoder --config FILE [--resume latest|DIR]`: the first stage.
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

    @Option(name: .long, help: ArgumentHelp("Continue from a checkpoint: `latest` (the run's newest committed one; "
        + "starts fresh if there is none) or a checkpoint directory.", valueName: "latest|DIR"))
    var resume: String?

    func run() throws {
        let communicator = try Communicators.make()
        let url = URL(fileURLWithPath: config)
        var settings = try ConfigLoader.load(AutoencoderTrainingConfig.self, from: url)
        if let maxSteps { settings.trainer.maxSteps = maxSteps }
        if let runDir { settings.trainer.runDirectory = runDir }
        // SIGTERM (Slurm's time limit, preemption) and SIGINT: checkpoint at the next step, then exit 0.
        StopRequest.shared.installSignalHandlers()
        RankFailure.guarding("train-autoencoder", communicator: communicator) {
            let trainer = try AutoencoderTrainer.start(config: settings, communicator: communicator,
                                                       lpipsWeights: URL(fileURLWithPath: lpipsWeights), resume: resume,
                                                       configSource: try? String(contentsOf: url, encoding: .utf8))
            try trainer.train()
            if !trainer.stoppedEarly { try trainer.evaluateHeldOut() }
        }
    }
}
