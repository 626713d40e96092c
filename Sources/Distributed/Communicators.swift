import Foundation

/// Picks the communicator for how the process was launched.
public enum Communicators {
    /// Environment variables that MPI launchers set for every rank: Open MPI's mpirun,
    /// MPICH/Hydra and Slurm's PMI, and PMIx (Open MPI ≥ 4, Slurm with PMIx).
    public static let launcherVariables = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"]

    /// Whether this process was started by an MPI launcher.
    public static func launchedUnderMPI(environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        launcherVariables.contains { environment[$0] != nil }
    }

    /// MPI's world when launched under `mpirun`/`srun`, a single-process world otherwise, so
    /// one binary runs both ways and never initialises MPI when it is not needed.
    public static func make(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Communicator {
        launchedUnderMPI(environment: environment) ? try MPICommunicator.world() : SingleProcessCommunicator()
    }
}
