import ArgumentParser
import Distributed
import Foundation
import Training

/// `ldm train-ldm --config FILE [--resume latest|DIR]`: the latent diffusion model.
struct TrainLDMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-ldm",
        abstract: "Train a (class-conditional) latent diffusion UNet on a latent cache.")

    @OptionGroup var training: TrainingRunOptions

    @Option(name: .long, help: "Override data.cache (the latent cache directory).")
    var cache: String?

    func run() throws {
        let communicator = try Communicators.make()
        var settings = try ConfigLoader.load(LDMTrainingConfig.self, from: training.configURL)
        training.apply(to: &settings.trainer)
        if let cache { settings.data.cache = cache }
        StopRequest.shared.installSignalHandlers()
        RankFailure.guarding("train-ldm", communicator: communicator) {
            let trainer = try LDMTrainer.start(config: settings, communicator: communicator, resume: training.resume,
                                               configSource: training.configSource)
            try trainer.train()
        }
    }
}
