import ArgumentParser
import Distributed
import Foundation
import Tensor
import Training

/// The options every training command takes: the config file, the overrides of its loop
/// settings, and where to resume from.
struct TrainingRunOptions: ParsableArguments {
    @Option(name: .long, help: "YAML config (see Configs/).")
    var config: String

    @Option(name: .long, help: "Override trainer.max_steps.")
    var maxSteps: Int?

    @Option(name: .long, help: "Override trainer.run_dir.")
    var runDir: String?

    @Option(name: .long, help: ArgumentHelp("Continue from a checkpoint: `latest` (the run's newest committed one; "
        + "starts fresh if there is none) or a checkpoint directory.", valueName: "latest|DIR"))
    var resume: String?

    var configURL: URL { URL(fileURLWithPath: config) }

    /// A bad LDM_BACKEND, LDM_CONV_ALGORITHM or LDM_ALLREDUCE is refused before any work,
    /// naming the variable and the choices.
    func validate() throws {
        do { try ComputeBackends.validateEnvironment() } catch { throw ValidationError("\(error)") }
        do { _ = try AllreduceTransport.fromEnvironment() } catch { throw ValidationError("\(error)") }
    }

    /// The config file's text, saved verbatim with every checkpoint.
    var configSource: String? { try? String(contentsOf: configURL, encoding: .utf8) }

    /// `trainer` with the command line's overrides applied.
    func apply(to trainer: inout TrainerConfig) {
        if let maxSteps { trainer.maxSteps = maxSteps }
        if let runDir { trainer.runDirectory = runDir }
    }
}
