import ArgumentParser
import Distributed
import Foundation
import Training

/// `ldm train-classifier --config FILE`: the evaluation classifier whose features and
/// predictions the generation metrics use.
struct TrainClassifierCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-classifier",
        abstract: "Train the evaluation classifier (feature network of FD, precision/recall, sample accuracy).")

    @OptionGroup var training: TrainingRunOptions

    func run() throws {
        let communicator = try Communicators.make()
        var settings = try ConfigLoader.load(ClassifierTrainingConfig.self, from: training.configURL)
        training.apply(to: &settings.trainer)
        StopRequest.shared.installSignalHandlers()
        RankFailure.guarding("train-classifier", communicator: communicator) {
            let trainer = try ClassifierTrainer.start(config: settings, communicator: communicator, resume: training.resume,
                                                      configSource: training.configSource)
            try trainer.train()
        }
    }
}
