import ArgumentParser
import Distributed
import Foundation
import Training

/// `ldm train-ldm --config FILE [--resume latest|DIR]`: the latent diffusion model.
struct TrainLDMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-ldm",
        abstract: "Train a (class-conditional) latent diffusion UNet on a latent cache.")

    @Option(name: .long, help: "YAML config (see Configs/ldm_*.yaml).")
    var config: String

    @Option(name: .long, help: "Override trainer.max_steps.")
    var maxSteps: Int?

    @Option(name: .long, help: "Override trainer.run_dir.")
    var runDir: String?

    @Option(name: .long, help: "Override data.cache (the latent cache directory).")
    var cache: String?

    @Option(name: .long, help: ArgumentHelp("Continue from a checkpoint: `latest` (the run's newest committed one; "
        + "starts fresh if there is none) or a checkpoint directory.", valueName: "latest|DIR"))
    var resume: String?

    func run() throws {
        let communicator = try Communicators.make()
        let url = URL(fileURLWithPath: config)
        var settings = try ConfigLoader.load(LDMTrainingConfig.self, from: url)
        if let maxSteps { settings.trainer.maxSteps = maxSteps }
        if let runDir { settings.trainer.runDirectory = runDir }
        if let cache { settings.data.cache = cache }
        StopRequest.shared.installSignalHandlers()
        RankFailure.guarding("train-ldm", communicator: communicator) {
            let trainer = try LDMTrainer.start(config: settings, communicator: communicator, resume: resume,
                                               configSource: try? String(contentsOf: url, encoding: .utf8))
            try trainer.train()
        }
    }
}
