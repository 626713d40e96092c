import CMPI
import Foundation

/// `SharedMemory` as an MPI-3 shared window (MPI_Win_allocate_shared) over the ranks of a
/// communicator that all run on one machine. The window stays in one passive-target epoch
/// (MPI_Win_lock_all) for its life, so `synchronize` is MPI_Win_sync around a barrier: the
/// unified memory model's way to order plain loads and stores between processes.
final class MPISharedWindow: SharedMemory {
    private let rank: Int
    private var node: MPI_Comm?
    private var window: MPI_Win?
    private let regions: [UnsafeMutableRawPointer]

    /// A collective over `comm`: nil on every rank unless all of its ranks share a machine.
    static func make(on comm: MPI_Comm, rank: Int, size: Int, bytes: Int) throws -> MPISharedWindow? {
        precondition(bytes >= 0, "shared memory: \(bytes) bytes requested")
        var node: MPI_Comm?
        try check(ldm_comm_split_shared(comm, &node), rank, "MPI_Comm_split_type(MPI_COMM_TYPE_SHARED)")
        var nodeSize: Int32 = 0, nodeRank: Int32 = 0
        MPI_Comm_size(node, &nodeSize)
        MPI_Comm_rank(node, &nodeRank)
        // Every rank of a job spread over machines sees a node smaller than the world.
        guard Int(nodeSize) == size else {
            MPI_Comm_free(&node)
            return nil
        }
        // Split with equal keys keeps the old order, so node ranks are world ranks.
        precondition(Int(nodeRank) == rank, "shared memory: node rank \(nodeRank) for world rank \(rank)")
        MPI_Comm_set_errhandler(node, ldm_errors_return())
        var base: UnsafeMutableRawPointer?
        var window: MPI_Win?
        // A zero-byte region is allowed; a whole byte keeps every region's address distinct.
        try check(ldm_win_allocate_shared(MPI_Aint(max(bytes, 1)), node, &base, &window), rank,
                  "MPI_Win_allocate_shared of \(bytes) bytes (shared memory for the gradient allreduce; "
                      + "LDM_ALLREDUCE=mpi does without it)")
        var regions: [UnsafeMutableRawPointer] = []
        for r in 0..<size {
            var region: UnsafeMutableRawPointer?
            try check(ldm_win_shared_query(window, Int32(r), &region), rank, "MPI_Win_shared_query of rank \(r)")
            guard let region else {
                throw CommunicatorError.transport(rank: rank, operation: "MPI_Win_shared_query of rank \(r)", code: -1,
                                                  message: "no address for the region")
            }
            regions.append(region)
        }
        try check(MPI_Win_lock_all(Int32(ldm_mode_nocheck()), window), rank, "MPI_Win_lock_all")
        return MPISharedWindow(rank: rank, node: node, window: window, regions: regions)
    }

    private init(rank: Int, node: MPI_Comm?, window: MPI_Win?, regions: [UnsafeMutableRawPointer]) {
        self.rank = rank
        self.node = node
        self.window = window
        self.regions = regions
    }

    deinit {
        var finalized: Int32 = 0
        MPI_Finalized(&finalized)
        guard finalized == 0 else { return }
        MPI_Win_unlock_all(window)
        MPI_Win_free(&window)
        MPI_Comm_free(&node)
    }

    func region(of rank: Int) -> UnsafeMutableRawPointer { regions[rank] }

    func synchronize() throws {
        try MPISharedWindow.check(MPI_Win_sync(window), rank, "MPI_Win_sync")
        try MPISharedWindow.check(MPI_Barrier(node), rank, "MPI_Barrier on the shared-memory ranks")
        try MPISharedWindow.check(MPI_Win_sync(window), rank, "MPI_Win_sync")
    }

    private static func check(_ code: Int32, _ rank: Int, _ operation: @autoclosure () -> String) throws {
        guard code != MPI_SUCCESS else { return }
        throw CommunicatorError.transport(rank: rank, operation: operation(), code: code,
                                          message: MPICommunicator.errorString(code))
    }
}
