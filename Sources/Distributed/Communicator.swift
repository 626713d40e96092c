import Foundation

/// The reduction applied element-wise by `allreduce`.
public enum ReduceOperation: Sendable {
    case sum, max, min
}

/// Collective communication among the ranks of one data-parallel job.
///
/// Every collective must be called by every rank, in the same order, with the same sizes
/// (except where a method says otherwise): that is how MPI matches collectives, and a rank
/// that skips or reorders one deadlocks or corrupts the job. Methods throw
/// `CommunicatorError` (naming the rank) when the transport reports a failure.
///
/// The requirements are the minimal typed primitives; typed, array, `Data`, string and tensor
/// conveniences are built on them in extensions, so every implementation gets them for free.
public protocol Communicator: AnyObject {
    /// This process's index in `0..<size`.
    var rank: Int { get }
    /// Number of ranks in the job.
    var size: Int { get }

    /// Returns once every rank has entered the barrier.
    func barrier() throws

    /// Copies `root`'s bytes into the same-sized buffer on every other rank.
    func broadcast(bytes: UnsafeMutableRawBufferPointer, root: Int) throws

    /// Replaces every element with the reduction of that element over all ranks.
    func allreduce(_ buffer: UnsafeMutableBufferPointer<Float>, op: ReduceOperation) throws
    func allreduce(_ buffer: UnsafeMutableBufferPointer<Double>, op: ReduceOperation) throws
    func allreduce(_ buffer: UnsafeMutableBufferPointer<Int64>, op: ReduceOperation) throws

    /// Starts replacing every element with its reduction over all ranks and returns without
    /// waiting: the buffer must stay alive and untouched until the request completes. Started
    /// collectives pair across ranks by the order they are started, as blocking ones do.
    func startAllreduce(_ buffer: UnsafeMutableBufferPointer<Float>, op: ReduceOperation) throws -> CollectiveRequest

    /// A communicator over the same ranks whose collectives never pair with this one's
    /// (MPI_Comm_dup), so collectives in flight on it cannot be confused with those another
    /// part of the program runs meanwhile. A collective: every rank calls it, in the same order.
    func duplicate() throws -> Communicator

    /// Every rank contributes `send.count` bytes (the same count on all ranks); `receive`
    /// (`size * send.count` bytes) gets the contributions in rank order.
    func allgather(bytes send: UnsafeRawBufferPointer, into receive: UnsafeMutableRawBufferPointer) throws

    /// Rank r contributes `counts[r]` bytes (`counts` known to every rank, `send.count ==
    /// counts[rank]`); `receive` gets the contributions concatenated in rank order.
    func allgatherVariable(bytes send: UnsafeRawBufferPointer, counts: [Int],
                           into receive: UnsafeMutableRawBufferPointer) throws

    /// Memory all ranks map, `bytes` for this rank's region (ranks may ask for different
    /// sizes), or nil when the ranks do not all share one machine or the transport has no
    /// shared memory. A collective.
    func sharedMemory(bytes: Int) throws -> SharedMemory?

    /// Ends the whole job (every rank) with `code`. Never returns.
    func abort(code: Int32) -> Never
}

/// A collective failed, or ranks disagree about something that must be identical.
public enum CommunicatorError: Error, CustomStringConvertible, Equatable {
    /// The transport reported `code` from `operation` on `rank`.
    case transport(rank: Int, operation: String, code: Int32, message: String)
    /// Ranks hold different parameter lists (names, order or shapes).
    case replicaMismatch(rank: Int, message: String)

    public var description: String {
        switch self {
        case let .transport(rank, operation, code, message):
            return "rank \(rank): \(operation) failed with MPI error \(code): \(message)"
        case let .replicaMismatch(rank, message):
            return "rank \(rank): replicas disagree: \(message)"
        }
    }
}

extension Communicator {
    public var isRoot: Bool { rank == 0 }

    /// Without a transport that maps memory across processes there is none to share.
    public func sharedMemory(bytes: Int) throws -> SharedMemory? { nil }

    @inline(__always)
    func checkRoot(_ root: Int, _ operation: String) {
        precondition(root >= 0 && root < size, "\(operation): root \(root) is outside a world of size \(size)")
    }

    // MARK: Broadcast

    /// Copies `root`'s elements into every rank's same-sized buffer.
    public func broadcast<T: BitwiseCopyable>(_ buffer: UnsafeMutableBufferPointer<T>, root: Int) throws {
        try broadcast(bytes: UnsafeMutableRawBufferPointer(buffer), root: root)
    }

    /// `root`'s array, on every rank. Other ranks' `values` are ignored and may differ in
    /// length (the length is broadcast first), e.g. an RNG state `[UInt64]`.
    public func broadcast<T: BitwiseCopyable>(_ values: [T], root: Int) throws -> [T] {
        checkRoot(root, "broadcast")
        var count = [Int64(values.count)]
        try count.withUnsafeMutableBufferPointer { try broadcast($0, root: root) }
        var result = rank == root ? values : [T](unsafeUninitializedCapacity: Int(count[0])) { buffer, initialized in
            // Zero-filled so the array is valid even before the bytes arrive.
            UnsafeMutableRawBufferPointer(buffer).initializeMemory(as: UInt8.self, repeating: 0)
            initialized = buffer.count
        }
        try result.withUnsafeMutableBufferPointer { try broadcast($0, root: root) }
        return result
    }

    /// One value of `root`'s, on every rank.
    public func broadcast<T: BitwiseCopyable>(_ value: T, root: Int) throws -> T {
        var box = [value]
        try box.withUnsafeMutableBufferPointer { try broadcast($0, root: root) }
        return box[0]
    }

    /// `root`'s bytes (any length), on every rank: configs, file lists, serialised state.
    public func broadcast(_ data: Data, root: Int) throws -> Data {
        let bytes: [UInt8] = try broadcast(rank == root ? [UInt8](data) : [], root: root)
        return Data(bytes)
    }

    /// `root`'s string, on every rank.
    public func broadcast(_ string: String, root: Int) throws -> String {
        let data = try broadcast(rank == root ? Data(string.utf8) : Data(), root: root)
        return String(decoding: data, as: UTF8.self)
    }

    // MARK: Non-blocking

    /// For transports without non-blocking collectives: reduced before returning, the
    /// request complete.
    public func startAllreduce(_ buffer: UnsafeMutableBufferPointer<Float>, op: ReduceOperation) throws -> CollectiveRequest {
        try allreduce(buffer, op: op)
        return CompletedRequest()
    }

    /// For transports whose `startAllreduce` completes before returning: nothing is ever in
    /// flight, so the communicator itself serves.
    public func duplicate() throws -> Communicator { self }

    // MARK: Allreduce

    /// Replaces every element with its mean over all ranks.
    public func allreduceMean(_ buffer: UnsafeMutableBufferPointer<Float>) throws {
        try allreduce(buffer, op: .sum)
        guard size > 1 else { return }
        let n = Float(size)
        for i in buffer.indices { buffer[i] /= n }
    }

    public func allreduceMean(_ buffer: UnsafeMutableBufferPointer<Double>) throws {
        try allreduce(buffer, op: .sum)
        guard size > 1 else { return }
        let n = Double(size)
        for i in buffer.indices { buffer[i] /= n }
    }

    /// The reduction of one scalar over all ranks (losses, sample counts, flags).
    public func allreduce(_ value: Float, op: ReduceOperation) throws -> Float {
        var box = [value]
        try box.withUnsafeMutableBufferPointer { try allreduce($0, op: op) }
        return box[0]
    }

    public func allreduce(_ value: Double, op: ReduceOperation) throws -> Double {
        var box = [value]
        try box.withUnsafeMutableBufferPointer { try allreduce($0, op: op) }
        return box[0]
    }

    public func allreduce(_ value: Int, op: ReduceOperation) throws -> Int {
        var box = [Int64(value)]
        try box.withUnsafeMutableBufferPointer { try allreduce($0, op: op) }
        return Int(box[0])
    }

    /// The mean of one scalar over all ranks.
    public func allreduceMean(_ value: Double) throws -> Double {
        try allreduce(value, op: .sum) / Double(size)
    }

    // MARK: Allgather

    /// Every rank's `value`, indexed by rank.
    public func allgather<T: BitwiseCopyable>(_ value: T) throws -> [T] {
        let values = [value]
        var result = [T](repeating: value, count: size)
        try values.withUnsafeBytes { send in
            try result.withUnsafeMutableBytes { try allgather(bytes: send, into: $0) }
        }
        return result
    }

    /// Every rank's array, indexed by rank. Lengths may differ between ranks.
    public func allgather<T: BitwiseCopyable>(_ values: [T]) throws -> [[T]] {
        let stride = MemoryLayout<T>.stride
        let byteArrays = try values.withUnsafeBytes { try allgatherVariable(bytes: $0) }
        return byteArrays.map { bytes in
            precondition(bytes.count % stride == 0, "allgather: \(bytes.count) bytes is not a whole number of \(T.self)")
            return bytes.withUnsafeBytes { Array($0.bindMemory(to: T.self)) }
        }
    }

    /// Every rank's bytes (any length), indexed by rank.
    public func allgather(_ data: Data) throws -> [Data] {
        try data.withUnsafeBytes { try allgatherVariable(bytes: $0) }.map { Data($0) }
    }

    /// Variable-length gather: lengths are exchanged first, then the bytes.
    func allgatherVariable(bytes send: UnsafeRawBufferPointer) throws -> [[UInt8]] {
        let counts = try allgather(Int64(send.count)).map { Int($0) }
        var receive = [UInt8](repeating: 0, count: counts.reduce(0, +))
        try receive.withUnsafeMutableBytes { try allgatherVariable(bytes: send, counts: counts, into: $0) }
        var result: [[UInt8]] = []
        var offset = 0
        for c in counts {
            result.append(Array(receive[offset..<offset + c]))
            offset += c
        }
        return result
    }
}
