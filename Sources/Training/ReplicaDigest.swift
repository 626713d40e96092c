import Checkpoint
import Distributed
import Foundation
import Tensor

/// A fingerprint of one rank's replica — every parameter and buffer, in order — to prove that
/// data-parallel ranks still hold bit-identical models.
///
/// Ranks stay identical only if every one of them applies the same averaged gradient to the
/// same weights; a rank that computed something from its own slice and used it in the update
/// (or a non-deterministic reduction) would drift silently, and its checkpoint would be
/// rank 0's weights saved over a job that trained something else. The trainers compare the
/// digests of all ranks at every checkpoint (one allgather of 8 bytes) and save each rank's.
public enum ReplicaDigest {
    /// Test hook: rank `LDM_TEST_PERTURB_RANK` changes one weight before each checkpoint, so
    /// the check must stop the job naming it (used by the divergence test).
    public static let perturbRankVariable = "LDM_TEST_PERTURB_RANK"

    /// XXH64 of the tensors' bytes, in the given order.
    public static func digest(_ tensors: [Tensor]) -> UInt64 {
        var hasher = XXH64()
        for t in tensors { hasher.update(UnsafeRawBufferPointer(t.buffer)) }
        return hasher.digest()
    }

    /// Ranks whose digest differs from the most common one (rank 0's on a tie), in rank order.
    public static func divergedRanks(_ digests: [UInt64]) -> [Int] {
        guard let first = digests.first else { return [] }
        var counts: [UInt64: Int] = [:]
        for d in digests { counts[d, default: 0] += 1 }
        let top = counts.values.max() ?? 0
        let consensus = counts[first] == top ? first : digests.first { counts[$0] == top }!
        return digests.indices.filter { digests[$0] != consensus }
    }

    /// Gathers every rank's digest; throws the same `replicaMismatch` on every rank, naming
    /// the ranks that diverged, when they are not all equal.
    public static func verify(_ digest: UInt64, communicator: Communicator, step: Int) throws {
        let digests = try communicator.allgather(digest)
        let diverged = divergedRanks(digests)
        guard !diverged.isEmpty else { return }
        let consensus = digests[digests.indices.first { !diverged.contains($0) }!]
        let detail = diverged.map { "rank \($0) holds \(XXH64.hexString(digests[$0]))" }.joined(separator: ", ")
        throw CommunicatorError.replicaMismatch(
            rank: communicator.rank,
            message: "parameters and buffers diverged at step \(step): \(detail), the other ranks "
                + "\(XXH64.hexString(consensus)); data-parallel replicas must stay bit-identical")
    }
}
