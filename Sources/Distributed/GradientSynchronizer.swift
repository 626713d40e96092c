import Foundation
import Tensor

/// Averages parameter gradients across ranks after backward, as PyTorch's DDP does: the
/// gradients are packed into a few large buckets and each bucket is reduced with one
/// allreduce, because one collective per parameter would pay MPI's latency hundreds of times.
///
/// Bucket order: every rank must reduce the same buckets in the same order. MPI pairs the
/// n-th allreduce on one rank with the n-th allreduce on every other rank and combines the
/// buffers element by element; if ranks disagreed on order or contents, gradients of
/// unrelated parameters would be summed silently (or sizes would differ and the job would
/// fail or hang). So buckets depend only on the parameter list — same order and shapes on
/// every rank, which `verifyShapesMatch` checks — and never on when gradients become ready.
///
/// Ranks on one machine average the buckets through shared memory (`SharedMemoryAllreduce`)
/// rather than MPI_Allreduce, unless `transport` is `.mpi`: the same bits at two ranks.
///
/// With `enableOverlap()` the buckets are instead reduced while backward runs (see
/// `OverlappedAllreduce`): train with `backward(_:reduce:)` and the gradients come out the same,
/// bit for bit, at two ranks.
public final class GradientSynchronizer {
    /// A run of consecutive parameters reduced together.
    public struct Bucket: Equatable, Sendable {
        /// Indices into `parameters`.
        public let parameterIndices: Range<Int>
        /// Offset of each parameter's gradient inside the bucket, in elements.
        public let offsets: [Int]
        public let elementCount: Int
    }

    public static let defaultBucketCapacityBytes = 25 << 20

    public let parameters: [Tensor]
    public let communicator: Communicator
    public let bucketCapacityBytes: Int
    public let buckets: [Bucket]
    /// One flat buffer per bucket, allocated once and reused every step.
    private let bucketStorage: [TensorStorage]
    /// Time in `synchronize` with several ranks (packing, allreduce, averaging, unpacking).
    public let synchronizeTime = Stopwatch()
    /// Time in its allreduce calls alone (one per bucket; overlapped: every MPI call for them).
    public let allreduceTime = Stopwatch()
    /// Overlapped: time spent after backward waiting for buckets still in flight.
    public let waitTime = Stopwatch()
    /// Time in `gather` (a sharded weight update's all-gather of the new weights).
    public let gatherTime = Stopwatch()
    /// Set by `enableOverlap()` on several ranks.
    private var overlapped: OverlappedAllreduce?
    public var overlapsBackward: Bool { overlapped != nil }
    public let transport: AllreduceTransport
    /// Made at the first blocking synchronisation (a collective); nil inside when the ranks
    /// do not share a machine.
    private var sharedAllreduce: SharedMemoryAllreduce??
    /// Whether the blocking allreduce has run through shared memory.
    public var reducesThroughSharedMemory: Bool { (sharedAllreduce ?? nil) != nil }

    /// - Parameters:
    ///   - parameters: the trainable tensors, in the same order on every rank.
    ///   - bucketCapacityBytes: a bucket takes consecutive parameters while they fit; a
    ///     parameter larger than the capacity gets a bucket of its own.
    ///   - transport: `LDM_ALLREDUCE`'s by default (a bad value is refused before training
    ///     starts, so it reads as automatic here).
    public init(parameters: [Tensor], communicator: Communicator,
                bucketCapacityBytes: Int = GradientSynchronizer.defaultBucketCapacityBytes,
                transport: AllreduceTransport = (try? AllreduceTransport.fromEnvironment()) ?? .automatic) {
        precondition(bucketCapacityBytes > 0, "bucket capacity must be positive, got \(bucketCapacityBytes)")
        self.parameters = parameters
        self.communicator = communicator
        self.bucketCapacityBytes = bucketCapacityBytes
        self.transport = transport
        buckets = GradientSynchronizer.planBuckets(elementCounts: parameters.map(\.count),
                                                   capacityBytes: bucketCapacityBytes)
        bucketStorage = communicator.size > 1 ? buckets.map { TensorStorage(count: $0.elementCount, zeroed: false) } : []
    }

    /// Greedy, order-preserving packing of parameters into buckets of at most
    /// `capacityBytes` (except single oversized parameters).
    public static func planBuckets(elementCounts: [Int], capacityBytes: Int) -> [Bucket] {
        let capacity = max(1, capacityBytes / MemoryLayout<Float>.stride)
        var buckets: [Bucket] = []
        var start = 0, offsets: [Int] = [], filled = 0
        for (i, count) in elementCounts.enumerated() {
            if !offsets.isEmpty && filled + count > capacity {
                buckets.append(Bucket(parameterIndices: start..<i, offsets: offsets, elementCount: filled))
                start = i; offsets = []; filled = 0
            }
            offsets.append(filled)
            filled += count
        }
        if !offsets.isEmpty {
            buckets.append(Bucket(parameterIndices: start..<elementCounts.count, offsets: offsets, elementCount: filled))
        }
        return buckets
    }

    /// Replaces every parameter's gradient with its mean over all ranks. A parameter without
    /// a gradient counts as zeros, and has one afterwards on every rank, so optimisers see
    /// the same set of gradients everywhere (and the same with one rank as with many).
    ///
    /// With `keeping`, only the parameters at those indices get the mean (the rest lose their
    /// gradient): a rank's share when the weight update is sharded, which saves copying the
    /// other ranks' shares out of the blocking allreduce.
    public func synchronize(keeping owned: Range<Int>? = nil) throws {
        guard communicator.size > 1 else {
            for p in parameters where p.grad == nil { p.grad = Tensor(zeros: p.shape) }
            return
        }
        if let overlapped, overlapped.isActive {
            try synchronizeTime.time { try overlapped.finish() }
        } else {
            try synchronizeTime.time { try reduceBuckets(keeping: owned) }
        }
        if let owned {
            for i in parameters.indices where !owned.contains(i) { parameters[i].grad = nil }
        }
    }

    /// Reduces buckets during the backward passes made with `backward(_:reduce: true)` from now
    /// on, on a duplicate of the communicator (so a collective: every rank calls it). Does
    /// nothing in a world of one rank.
    public func enableOverlap() throws {
        guard communicator.size > 1, overlapped == nil else { return }
        overlapped = OverlappedAllreduce(parameters: parameters, communicator: try communicator.duplicate(),
                                         capacityBytes: bucketCapacityBytes, allreduceTime: allreduceTime,
                                         packingTime: synchronizeTime, waitTime: waitTime)
    }

    /// `loss.backward()`; with `reduce` (the last micro-batch before `synchronize()`) and the
    /// overlap enabled, buckets are reduced as their gradients complete.
    public func backward(_ loss: Tensor, reduce: Bool) {
        if reduce, let overlapped { loss.backward(observer: overlapped) } else { loss.backward() }
    }

    /// The overlapped path's buckets, in launch order (planned at its first synchronisation).
    var overlappedBuckets: [OverlappedAllreduce.Bucket] { overlapped?.buckets ?? [] }

    /// Whether the ranks share a machine and the blocking path uses its memory (made here
    /// when not yet: a collective).
    public func sharedMemoryAvailable() throws -> Bool { try sharedMemoryAllreduce() != nil }

    func sharedMemoryAllreduce() throws -> SharedMemoryAllreduce? {
        if let made = sharedAllreduce { return made }
        let made = transport == .mpi ? nil
            : try SharedMemoryAllreduce.make(communicator: communicator, capacity: buckets.map(\.elementCount).max() ?? 0)
        sharedAllreduce = .some(made)
        return made
    }

    private func reduceBuckets(keeping owned: Range<Int>?) throws {
        let worldSize = Float(communicator.size)
        let shared = try sharedMemoryAllreduce()
        for (bucket, storage) in zip(buckets, bucketStorage) {
            let flat = shared?.contribution ?? storage.pointer
            for (i, offset) in zip(bucket.parameterIndices, bucket.offsets) {
                let p = parameters[i]
                if let g = p.grad {
                    precondition(g.count == p.count, "gradient of parameter #\(i) has shape \(g.shape), parameter has \(p.shape)")
                    (flat + offset).update(from: g.pointer, count: p.count)
                } else {
                    (flat + offset).update(repeating: 0, count: p.count)
                }
            }
            if let shared {
                try allreduceTime.time { try shared.average(count: bucket.elementCount) }
                let kept = bucket.parameterIndices.clamped(to: owned ?? bucket.parameterIndices)
                if !kept.isEmpty {
                    let first = kept.lowerBound - bucket.parameterIndices.lowerBound
                    copyBucketGradients(from: shared.result, into: parameters, indices: kept,
                                        offsets: Array(bucket.offsets[first..<first + kept.count]))
                }
            } else {
                try allreduceTime.time { try communicator.allreduce(storage.buffer, op: .sum) }
                unpackAveragedGradients(from: flat, elementCount: bucket.elementCount, worldSize: worldSize,
                                        into: parameters, indices: bucket.parameterIndices, offsets: bucket.offsets)
            }
        }
    }

    /// Overwrites parameters (through the buckets, one broadcast per bucket) and `buffers`
    /// (non-trainable state such as running statistics) with `root`'s values, so every
    /// replica starts identical.
    public func broadcastParameters(buffers: [Tensor] = [], from root: Int = 0) throws {
        if communicator.size > 1 {
            for (bucket, storage) in zip(buckets, bucketStorage) {
                let flat = storage.pointer
                if communicator.rank == root {
                    for (i, offset) in zip(bucket.parameterIndices, bucket.offsets) {
                        (flat + offset).update(from: parameters[i].pointer, count: parameters[i].count)
                    }
                }
                try communicator.broadcast(storage.buffer, root: root)
                if communicator.rank != root {
                    for (i, offset) in zip(bucket.parameterIndices, bucket.offsets) {
                        parameters[i].pointer.update(from: flat + offset, count: parameters[i].count)
                    }
                }
            }
        }
        try communicator.broadcast(buffers, root: root)
    }

    /// Checks that every rank has these names with the synchronised parameters' shapes.
    public func verifyShapesMatch(names: [String]) throws {
        precondition(names.count == parameters.count, "\(names.count) names for \(parameters.count) parameters")
        try GradientSynchronizer.verifyShapesMatch(parameters: zip(names, parameters).map { ($0, $1.shape) },
                                                   communicator: communicator)
    }

    /// Checks that every rank holds the same parameter names, order and shapes. Cheap when
    /// they agree (one allgather of a 64-bit digest); on a mismatch the full lists are
    /// gathered and every rank throws the same `replicaMismatch` naming the first rank that
    /// differs from rank 0 and the first parameter where it does.
    public static func verifyShapesMatch(parameters: [(name: String, shape: [Int])],
                                         communicator: Communicator) throws {
        let signature = ParameterSignature(parameters)
        let digests = try communicator.allgather(signature.digest)
        guard Set(digests).count > 1 else { return }
        let signatures = try communicator.allgather(signature.encoded()).map(ParameterSignature.decoded)
        var differences: [String] = []
        for r in 1..<signatures.count {
            if let d = signatures[0].firstDifference(from: signatures[r], referenceRank: 0, otherRank: r) {
                differences.append(d)
            }
        }
        throw CommunicatorError.replicaMismatch(rank: communicator.rank, message: differences.joined(separator: "; "))
    }
}
