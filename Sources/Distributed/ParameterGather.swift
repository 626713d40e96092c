import Foundation
import Tensor

/// The all-gather that ends a weight update sharded over ranks (ZeRO stage 1): each rank has
/// stepped its own share of the parameters, and every rank needs all of them.
extension GradientSynchronizer {
    /// Rank r holds the current values of the tensors at `owners[r]` (indices in `parameters`'
    /// order; each tensor has its parameter's shape, or is nil, e.g. a parameter without an EMA
    /// shadow); afterwards every rank holds every rank's. Through the allreduce's shared memory
    /// when the ranks share a machine (in chunks of its regions), else MPI_Allgatherv. A
    /// collective that copies bits, so replicas stay bit-identical.
    public func gather(_ tensors: [Tensor?], owners: [Range<Int>]) throws {
        precondition(tensors.count == parameters.count, "gather: \(tensors.count) tensors for \(parameters.count) parameters")
        precondition(owners.count == communicator.size, "gather: \(owners.count) owner ranges for \(communicator.size) ranks")
        for (t, p) in zip(tensors, parameters) where t != nil {
            precondition(t!.shape == p.shape, "gather: a tensor of shape \(t!.shape) for a parameter of shape \(p.shape)")
        }
        guard communicator.size > 1 else { return }
        let held = owners.map { $0.compactMap { tensors[$0] } }
        try gatherTime.time {
            if let shared = try sharedMemoryAllreduce() {
                try gather(held, through: shared)
            } else {
                try gatherThroughMPI(held)
            }
        }
    }

    private func gather(_ held: [[Tensor]], through shared: SharedMemoryAllreduce) throws {
        let counts = held.map { $0.reduce(0) { $0 + $1.count } }
        let chunk = shared.capacity
        guard chunk > 0, let most = counts.max(), most > 0 else { return }
        let rank = communicator.rank
        for start in stride(from: 0, to: most, by: chunk) {
            func piece(_ r: Int) -> Range<Int> { min(start, counts[r])..<min(start + chunk, counts[r]) }
            Self.copy(held[rank], elements: piece(rank), to: shared.contribution(of: rank))
            try shared.synchronize()  // every rank's piece written
            for q in held.indices where q != rank {
                Self.copy(held[q], elements: piece(q), from: UnsafePointer(shared.contribution(of: q)))
            }
            try shared.synchronize()  // every piece read before the next is written
        }
    }

    private func gatherThroughMPI(_ held: [[Tensor]]) throws {
        let counts = held.map { $0.reduce(0) { $0 + $1.count } }
        let rank = communicator.rank
        var send = [Float](repeating: 0, count: counts[rank])
        send.withUnsafeMutableBufferPointer { Self.copy(held[rank], elements: 0..<counts[rank], to: $0.baseAddress!) }
        var receive = [Float](repeating: 0, count: counts.reduce(0, +))
        try send.withUnsafeBytes { s in
            try receive.withUnsafeMutableBytes { r in
                try communicator.allgatherVariable(bytes: s, counts: counts.map { $0 * MemoryLayout<Float>.stride }, into: r)
            }
        }
        receive.withUnsafeBufferPointer { all in
            var offset = 0
            for q in held.indices {
                if q != rank { Self.copy(held[q], elements: 0..<counts[q], from: all.baseAddress! + offset) }
                offset += counts[q]
            }
        }
    }

    /// Elements `elements` of the tensors laid end to end, into `flat` (which holds just them).
    static func copy(_ tensors: [Tensor], elements: Range<Int>, to flat: UnsafeMutablePointer<Float>) {
        forEachPiece(of: tensors, in: elements) { t, from, into, count in (flat + into).update(from: t.pointer + from, count: count) }
    }

    /// Elements `elements` of the tensors laid end to end, from `flat` (which holds just them).
    static func copy(_ tensors: [Tensor], elements: Range<Int>, from flat: UnsafePointer<Float>) {
        forEachPiece(of: tensors, in: elements) { t, from, into, count in t.pointer.advanced(by: from).update(from: flat + into, count: count) }
    }

    /// For each tensor overlapping `elements` of their concatenation: (tensor, offset in it,
    /// offset from elements.lowerBound, count).
    private static func forEachPiece(of tensors: [Tensor], in elements: Range<Int>,
                                     _ body: (Tensor, Int, Int, Int) -> Void) {
        var offset = 0
        for t in tensors {
            guard offset < elements.upperBound else { return }
            let start = max(elements.lowerBound, offset), end = min(elements.upperBound, offset + t.count)
            if start < end { body(t, start - offset, start - elements.lowerBound, end - start) }
            offset += t.count
        }
    }
}
