import Checkpoint
import Distributed
import Foundation
import NN
import Tensor

/// The weight update sharded over data-parallel ranks (ZeRO stage 1): each rank clips and
/// steps only its share of the parameters and moves only their EMA shadows, then the ranks
/// all-gather the new weights. Replicated, every rank runs the whole update (the gradient
/// norm, AdamW and the EMA read and write every parameter's five arrays) whatever its share of
/// the batch: a fixed cost per step that does not shrink with more ranks. Sharded, each rank
/// does 1/N of it and copies N−1 shares of weights in.
///
/// The shares are the optimizer checkpoint's (`ShardAssignment.contiguous`), so each rank
/// writes exactly the moments it keeps. The bits are the replicated update's: the global norm
/// is summed in the same order (`Adam.norm(ofSquares:)`), each element is stepped by the same
/// arithmetic, and the gather copies bits. The other shares' EMA shadows are behind on a rank
/// until `gatherShadows()`, which the trainer calls before anything reads them.
public final class ShardedWeightUpdate {
    public let owners: [Range<Int>]
    public let rank: Int
    private let optimizer: Adam
    private let synchronizer: GradientSynchronizer
    private let communicator: Communicator
    /// Whether other ranks' shadows have moved since this rank last gathered them.
    public private(set) var shadowsBehind = false

    /// Sharded when asked for and there are several ranks that share a machine, so the gather
    /// is a copy through shared memory (between machines it would add half an allreduce's
    /// traffic, more than the update it saves). A collective.
    public static func make(enabled: Bool, optimizer: Adam, synchronizer: GradientSynchronizer) throws -> ShardedWeightUpdate? {
        let communicator = synchronizer.communicator
        guard enabled, communicator.size > 1, try synchronizer.sharedMemoryAvailable() else { return nil }
        precondition(optimizer.parameters.count == synchronizer.parameters.count
                     && zip(optimizer.parameters, synchronizer.parameters).allSatisfy { $0.1 === $1 },
                     "sharded update: the optimizer and the gradient synchronizer must hold the same parameters in the same order")
        return ShardedWeightUpdate(optimizer: optimizer, synchronizer: synchronizer, communicator: communicator)
    }

    private init(optimizer: Adam, synchronizer: GradientSynchronizer, communicator: Communicator) {
        self.optimizer = optimizer
        self.synchronizer = synchronizer
        self.communicator = communicator
        rank = communicator.rank
        owners = ShardAssignment.contiguous(elementCounts: optimizer.parameters.map { $0.1.count }, parts: communicator.size)
    }

    /// The parameters this rank steps (indices into the optimizer's).
    public var owned: Range<Int> { owners[rank] }

    /// After `synchronizer.synchronize(keeping: owned)`: the global norm, this rank's share of
    /// clipping, AdamW and the EMA, then the gather of every share. Returns the norm before
    /// clipping. A collective.
    public func step(maxNorm: Float, averaging ema: ExponentialMovingAverage?, of model: Module) throws -> Float {
        var squares = optimizer.squaredGradientNorms(owned)
        // Each entry is non-zero on one rank only, so the sum over ranks is exact.
        try squares.withUnsafeMutableBufferPointer { try communicator.allreduce($0, op: .sum) }
        let norm = Adam.norm(ofSquares: squares)
        optimizer.clipAndStep(norm: norm, maxNorm: maxNorm, indices: owned, averaging: ema, of: ema == nil ? nil : model)
        try synchronizer.gather(optimizer.parameters.map { Optional($0.1) }, owners: owners)
        if ema != nil { shadowsBehind = true }
        return norm
    }

    /// Brings the other ranks' EMA shadows up to date. A collective; nothing to do unless a
    /// step has run since the last call.
    public func gatherShadows(of ema: ExponentialMovingAverage) throws {
        guard shadowsBehind else { return }
        let byName = Dictionary(ema.shadows, uniquingKeysWith: { first, _ in first })
        try synchronizer.gather(optimizer.parameters.map { byName[$0.0] }, owners: owners)
        shadowsBehind = false
    }

    /// The header line of a run with a sharded update.
    public var description: String {
        "weight update: sharded over \(communicator.size) ranks (each runs the gradient norm, AdamW and the EMA on its share "
            + "of the parameters, then the weights are gathered through shared memory)"
    }
}
