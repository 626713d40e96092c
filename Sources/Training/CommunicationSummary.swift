import Distributed
import Foundation

/// Pieces of the `communication:` line printed at the end of a multi-rank run.
enum CommunicationSummary {
    static func percent(_ seconds: Double, of steps: Double) -> String {
        steps > 0 ? String(format: "%.2f %%", 100 * seconds / steps) : "-"
    }

    /// How the gradient allreduce ran and, overlapped, the part backward could not hide: the
    /// wait for buckets still in flight once backward is done.
    static func allreduceMode(_ synchronizers: [GradientSynchronizer], stepSeconds: Double) -> String {
        guard synchronizers.contains(where: \.overlapsBackward) else {
            let through = synchronizers.contains(where: \.reducesThroughSharedMemory) ? "shared memory" : "MPI"
            return "allreduce after backward (not overlapped), through \(through)"
        }
        let wait = synchronizers.map(\.waitTime.seconds).reduce(0, +)
        return String(format: "allreduce overlapped with backward, waiting after it %.3f s (%@)", wait,
                      percent(wait, of: stepSeconds))
    }
}
