import Distributed
import Foundation

/// Ranks of one in-process job, each on its own thread, so cross-rank reductions can be
/// tested without `mpirun`. Every collective is an all-to-all exchange of bytes through a
/// shared rendezvous; each rank then computes the collective's result from all the
/// contributions in rank order.
final class LocalGroup: @unchecked Sendable {
    let size: Int
    private let condition = NSCondition()
    private var slots: [[UInt8]?]
    private var arrived = 0
    private var generation = 0
    private var results: [[UInt8]] = []

    init(size: Int) {
        self.size = size
        slots = Array(repeating: nil, count: size)
    }

    /// Every rank's bytes, once every rank has contributed. A rank of the next collective
    /// cannot overwrite `results` before all ranks of this one left: that needs all of them.
    func exchange(rank: Int, _ bytes: [UInt8]) -> [[UInt8]] {
        condition.lock()
        defer { condition.unlock() }
        let myGeneration = generation
        slots[rank] = bytes
        arrived += 1
        if arrived == size {
            results = slots.map { $0! }
            slots = Array(repeating: nil, count: size)
            arrived = 0
            generation += 1
            condition.broadcast()
        } else {
            while generation == myGeneration { condition.wait() }
        }
        return results
    }

    /// Runs `body(communicator)` on `size` threads and returns their results by rank.
    func run<T>(_ body: @escaping (LocalGroupCommunicator) throws -> T) -> [Result<T, Error>] {
        let outcomes = Outcomes<T>(size), done = DispatchGroup()
        for r in 0..<size {
            done.enter()
            let thread = Thread { [self] in
                let outcome = Result { try body(LocalGroupCommunicator(rank: r, group: self)) }
                outcomes.lock.lock(); outcomes.byRank[r] = outcome; outcomes.lock.unlock()
                done.leave()
            }
            thread.start()
        }
        done.wait()
        return outcomes.byRank.map { $0! }
    }
}

/// Each rank's result, filled in by the rank threads.
private final class Outcomes<T>: @unchecked Sendable {
    let lock = NSLock()
    var byRank: [Result<T, Error>?]
    init(_ size: Int) { byRank = Array(repeating: nil, count: size) }
}

final class LocalGroupCommunicator: Communicator {
    let rank: Int
    let group: LocalGroup
    var size: Int { group.size }

    init(rank: Int, group: LocalGroup) {
        self.rank = rank
        self.group = group
    }

    func barrier() throws { _ = group.exchange(rank: rank, []) }

    func broadcast(bytes: UnsafeMutableRawBufferPointer, root: Int) throws {
        let all = group.exchange(rank: rank, Array(bytes))
        bytes.copyBytes(from: all[root])
    }

    private func reduce<T: BitwiseCopyable>(_ buffer: UnsafeMutableBufferPointer<T>, _ combine: (T, T) -> T) {
        let all = group.exchange(rank: rank, Array(UnsafeRawBufferPointer(buffer)))
        let values = all.map { bytes in bytes.withUnsafeBytes { Array($0.bindMemory(to: T.self)) } }
        for i in buffer.indices {
            buffer[i] = values.dropFirst().reduce(values[0][i]) { combine($0, $1[i]) }
        }
    }

    private func combiner<T: Comparable & AdditiveArithmetic>(_ op: ReduceOperation) -> (T, T) -> T {
        switch op {
        case .sum: return { $0 + $1 }
        case .max: return { Swift.max($0, $1) }
        case .min: return { Swift.min($0, $1) }
        }
    }

    func allreduce(_ buffer: UnsafeMutableBufferPointer<Float>, op: ReduceOperation) throws { reduce(buffer, combiner(op)) }
    func allreduce(_ buffer: UnsafeMutableBufferPointer<Double>, op: ReduceOperation) throws { reduce(buffer, combiner(op)) }
    func allreduce(_ buffer: UnsafeMutableBufferPointer<Int64>, op: ReduceOperation) throws { reduce(buffer, combiner(op)) }

    func allgather(bytes send: UnsafeRawBufferPointer, into receive: UnsafeMutableRawBufferPointer) throws {
        receive.copyBytes(from: group.exchange(rank: rank, Array(send)).joined())
    }

    func allgatherVariable(bytes send: UnsafeRawBufferPointer, counts: [Int],
                           into receive: UnsafeMutableRawBufferPointer) throws {
        let all = group.exchange(rank: rank, Array(send))
        precondition(all.map(\.count) == counts, "allgatherVariable: counts \(counts), contributions \(all.map(\.count))")
        receive.copyBytes(from: all.joined())
    }

    func abort(code: Int32) -> Never { fatalError("rank \(rank) aborted the local group with code \(code)") }
}
