import Foundation
import Tensor

/// The gradient allreduce overlapped with backward, as PyTorch DDP's reducer does it: a
/// bucket's non-blocking allreduce starts as soon as the last of its gradients is complete,
/// while backward goes on computing the gradients of earlier layers.
///
/// Buckets are launched strictly in bucket order (bucket k waits for bucket k − 1 even if it
/// is complete first), so every rank starts the same collectives in the same order whatever
/// its timing; they run on a duplicate of the job's communicator, so the collectives that
/// backward itself runs meanwhile (synchronised BatchNorm) can never pair with them. A
/// bucket holds the same gradients, is reduced by the same sum and divided by the same world
/// size as in the blocking path; only when it is sent differs.
///
/// Bucket order is the order gradients become ready. The first observed backward records
/// it without launching anything (the blocking path's cost, once); rank 0's order is
/// broadcast and the buckets are planned from it, the first one small so that
/// communication starts early. Every later backward overlaps.
final class OverlappedAllreduce: BackwardObserver {
    /// Parameters reduced together, in launch order.
    struct Bucket: Equatable {
        let parameterIndices: [Int]
        /// Offset of each parameter's gradient inside the bucket, in elements.
        let offsets: [Int]
        let elementCount: Int
    }

    /// PyTorch's first-bucket size: small, so the first allreduce starts early in backward.
    static let firstBucketCapacityBytes = 1 << 20
    /// MPI is given a chance to progress at most this often between backward nodes.
    static let progressIntervalNanoseconds: UInt64 = 100_000

    let parameters: [Tensor]
    let communicator: Communicator
    let capacityBytes: Int
    private let indexOf: [ObjectIdentifier: Int]
    private(set) var buckets: [Bucket] = []
    private var storage: [TensorStorage] = []
    /// Per parameter: its bucket and its offset there.
    private var place: [(bucket: Int, offset: Int)] = []

    // State of the backward being observed.
    private(set) var isActive = false
    private var ready: [Bool]
    private var readyOrder: [Int] = []
    private var pendingInBucket: [Int] = []
    private var requests: [CollectiveRequest?] = []
    private var nextLaunch = 0
    private var lastProgress: UInt64 = 0
    /// An error inside backward (which cannot throw) is kept and thrown by `finish`.
    private var failure: Error?

    let allreduceTime: Stopwatch
    let packingTime: Stopwatch
    let waitTime: Stopwatch

    /// - Parameter communicator: a duplicate reserved for these buckets.
    init(parameters: [Tensor], communicator: Communicator, capacityBytes: Int,
         allreduceTime: Stopwatch, packingTime: Stopwatch, waitTime: Stopwatch) {
        self.parameters = parameters
        self.communicator = communicator
        self.capacityBytes = capacityBytes
        self.allreduceTime = allreduceTime
        self.packingTime = packingTime
        self.waitTime = waitTime
        indexOf = Dictionary(uniqueKeysWithValues: parameters.enumerated().map { (ObjectIdentifier($1), $0) })
        precondition(indexOf.count == parameters.count, "a parameter is listed twice")
        ready = Array(repeating: false, count: parameters.count)
    }

    var isPlanned: Bool { !buckets.isEmpty || parameters.isEmpty }

    /// Greedy packing in `order`: the first bucket up to `firstCapacityBytes`, the others up to
    /// `capacityBytes` (a parameter larger than that gets a bucket of its own).
    static func planBuckets(order: [Int], elementCounts: [Int], capacityBytes: Int, firstCapacityBytes: Int) -> [Bucket] {
        var buckets: [Bucket] = []
        var members: [Int] = [], offsets: [Int] = [], filled = 0
        for i in order {
            let limit = max(1, (buckets.isEmpty ? min(firstCapacityBytes, capacityBytes) : capacityBytes) / MemoryLayout<Float>.stride)
            if !members.isEmpty && filled + elementCounts[i] > limit {
                buckets.append(Bucket(parameterIndices: members, offsets: offsets, elementCount: filled))
                members = []; offsets = []; filled = 0
            }
            members.append(i)
            offsets.append(filled)
            filled += elementCounts[i]
        }
        if !members.isEmpty { buckets.append(Bucket(parameterIndices: members, offsets: offsets, elementCount: filled)) }
        return buckets
    }

    // MARK: BackwardObserver

    func backwardWillStart(leaves: [Tensor]) {
        precondition(!isActive, "one observed backward per gradient synchronisation: synchronize() before the next")
        isActive = true
        failure = nil
        readyOrder = []
        for i in ready.indices { ready[i] = false }
        pendingInBucket = buckets.map { $0.parameterIndices.count }
        requests = Array(repeating: nil, count: buckets.count)
        nextLaunch = 0
        lastProgress = DispatchTime.now().uptimeNanoseconds
        // A parameter this backward cannot reach keeps its gradient: it is complete already.
        let reached = Set(leaves.map(ObjectIdentifier.init))
        for (i, p) in parameters.enumerated() where !reached.contains(ObjectIdentifier(p)) {
            markReady(i, recorded: false)
        }
    }

    func gradientReady(_ leaf: Tensor) {
        guard let i = indexOf[ObjectIdentifier(leaf)] else { return }  // another module's leaf
        markReady(i, recorded: true)
        progress(force: true)
    }

    func betweenNodes() { progress(force: false) }

    // MARK: Buckets

    private func markReady(_ i: Int, recorded: Bool) {
        guard !ready[i] else { return }
        ready[i] = true
        if recorded { readyOrder.append(i) }
        guard isPlanned else { return }
        let (b, offset) = place[i]
        packingTime.time { pack(i, into: storage[b].pointer + offset) }
        pendingInBucket[b] -= 1
        if pendingInBucket[b] == 0 { launchCompleteBuckets() }
    }

    private func pack(_ i: Int, into destination: UnsafeMutablePointer<Float>) {
        let p = parameters[i]
        if let g = p.grad {
            precondition(g.count == p.count, "gradient of parameter #\(i) has shape \(g.shape), parameter has \(p.shape)")
            destination.update(from: g.pointer, count: p.count)
        } else {
            destination.update(repeating: 0, count: p.count)
        }
    }

    /// Starts every complete bucket whose predecessors have all started.
    private func launchCompleteBuckets() {
        while failure == nil, nextLaunch < buckets.count, pendingInBucket[nextLaunch] == 0 {
            let b = nextLaunch
            do {
                requests[b] = try allreduceTime.time { try communicator.startAllreduce(storage[b].buffer, op: .sum) }
            } catch {
                failure = error
            }
            nextLaunch += 1
        }
    }

    /// Lets MPI move the started buckets along (it only does inside MPI calls).
    private func progress(force: Bool) {
        guard failure == nil, requests.contains(where: { $0 != nil }) else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        guard force || now - lastProgress >= Self.progressIntervalNanoseconds else { return }
        lastProgress = now
        do {
            try allreduceTime.time {
                for b in requests.indices { if let r = requests[b], try r.test() { requests[b] = nil } }
            }
        } catch {
            failure = error
        }
    }

    /// Completes the round: parameters that got no gradient count as they are (zeros if
    /// none), every bucket is reduced, and each gradient becomes its mean over the ranks.
    func finish() throws {
        precondition(isActive, "finish without an observed backward")
        defer { isActive = false }
        if let failure { throw failure }
        if !isPlanned {
            try plan()
            for i in parameters.indices {
                let (b, offset) = place[i]
                packingTime.time { pack(i, into: storage[b].pointer + offset) }
            }
            pendingInBucket = buckets.map { _ in 0 }
            requests = Array(repeating: nil, count: buckets.count)
            launchCompleteBuckets()
        } else {
            for i in parameters.indices where !ready[i] { markReady(i, recorded: false) }
        }
        if let failure { throw failure }
        precondition(nextLaunch == buckets.count, "every bucket is started once all gradients are complete")
        let worldSize = Float(communicator.size)
        for (b, bucket) in buckets.enumerated() {
            if let request = requests[b] {
                try waitTime.time { try allreduceTime.time { try request.wait() } }
                requests[b] = nil
            }
            let flat = storage[b].pointer
            packingTime.time {
                unpackAveragedGradients(from: flat, elementCount: bucket.elementCount, worldSize: worldSize, into: parameters,
                                        indices: bucket.parameterIndices, offsets: bucket.offsets)
            }
        }
    }

    /// Buckets from rank 0's observed ready order (parameters it never saw become ready go
    /// last, newest first), the same on every rank.
    private func plan() throws {
        let seen = Set(readyOrder)
        var order = readyOrder + parameters.indices.reversed().filter { !seen.contains($0) }
        var shared = order.map { Int64($0) }
        try shared.withUnsafeMutableBufferPointer { try communicator.broadcast($0, root: 0) }
        order = shared.map { Int($0) }
        precondition(Set(order).count == parameters.count && order.allSatisfy { parameters.indices.contains($0) },
                     "rank 0's bucket order is not a permutation of this rank's \(parameters.count) parameters")
        buckets = Self.planBuckets(order: order, elementCounts: parameters.map(\.count), capacityBytes: capacityBytes,
                                   firstCapacityBytes: Self.firstBucketCapacityBytes)
        storage = buckets.map { TensorStorage(count: $0.elementCount, zeroed: false) }
        place = Array(repeating: (0, 0), count: parameters.count)
        for (b, bucket) in buckets.enumerated() {
            for (i, offset) in zip(bucket.parameterIndices, bucket.offsets) { place[i] = (b, offset) }
        }
    }
}
