import ArgumentParser
import Tensor

/// `ldm`: the latent diffusion trainer's command line. Each stage of the pipeline is a
/// subcommand; all of them run the same as one process or as ranks under mpirun.
@main
struct LDMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ldm",
        abstract: "Latent diffusion models on CPUs, data-parallel over MPI ranks.",
        subcommands: [TrainAutoencoderCommand.self, ImportVAECommand.self, ExportVAECommand.self, ImportUNetCommand.self, ExportUNetCommand.self,
                      PrecomputeLatentsCommand.self, CacheCommand.self, EvaluateAutoencoderCommand.self,
                      TrainLDMCommand.self, SampleCommand.self, TrainClassifierCommand.self, EvaluateCommand.self, PlotCommand.self])

    /// OpenMP's wait policy for the backend (see OpenMPWaitPolicy), then parse.
    static func main() {
        OpenMPWaitPolicy.applyBackendDefault()
        main(nil)
    }
}
