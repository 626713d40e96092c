import ArgumentParser
import Distributed
import Foundation
import Training

/// `ldm train-autoencoder --config FILE [--resume latest|DIR]`: the first stage.
struct TrainAutoencoderCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-autoencoder",
        abstract: "Train a KL or VQ autoencoder with L1 + LPIPS + PatchGAN losses.")

    @OptionGroup var training: TrainingRunOptions

    @Option(name: .long, help: "LPIPS weights (safetensors).")
    var lpipsWeights: String = "Checkpoints/pretrained/lpips_vgg16.safetensors"

    func run() throws {
        let communicator = try Communicators.make()
        var settings = try ConfigLoader.load(AutoencoderTrainingConfig.self, from: training.configURL)
        training.apply(to: &settings.trainer)
        // SIGTERM (Slurm's time limit, preemption) and SIGINT: checkpoint at the next step, then exit 0.
        StopRequest.shared.installSignalHandlers()
        RankFailure.guarding("train-autoencoder", communicator: communicator) {
            let trainer = try AutoencoderTrainer.start(config: settings, communicator: communicator,
                                                       lpipsWeights: URL(fileURLWithPath: lpipsWeights), resume: training.resume,
                                                       configSource: training.configSource)
            try trainer.train()
            if !trainer.stoppedEarly { try trainer.evaluateHeldOut() }
        }
    }
}
