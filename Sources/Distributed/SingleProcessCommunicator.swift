import Foundation

/// A world of one rank: every collective is the identity, and no MPI library is touched, so
/// the same training code runs as a plain process without `mpirun`.
public final class SingleProcessCommunicator: Communicator {
    public init() {}

    public var rank: Int { 0 }
    public var size: Int { 1 }

    public func barrier() throws {}

    public func broadcast(bytes: UnsafeMutableRawBufferPointer, root: Int) throws {
        checkRoot(root, "broadcast")
    }

    // The reduction of a single contribution is that contribution.
    public func allreduce(_ buffer: UnsafeMutableBufferPointer<Float>, op: ReduceOperation) throws {}
    public func allreduce(_ buffer: UnsafeMutableBufferPointer<Double>, op: ReduceOperation) throws {}
    public func allreduce(_ buffer: UnsafeMutableBufferPointer<Int64>, op: ReduceOperation) throws {}

    public func startAllreduce(_ buffer: UnsafeMutableBufferPointer<Float>, op: ReduceOperation) throws -> CollectiveRequest {
        CompletedRequest()
    }

    public func duplicate() throws -> Communicator { SingleProcessCommunicator() }

    public func allgather(bytes send: UnsafeRawBufferPointer, into receive: UnsafeMutableRawBufferPointer) throws {
        precondition(receive.count == send.count, "allgather: receive holds \(receive.count) bytes, world of 1 sends \(send.count)")
        receive.copyMemory(from: send)
    }

    public func allgatherVariable(bytes send: UnsafeRawBufferPointer, counts: [Int],
                                  into receive: UnsafeMutableRawBufferPointer) throws {
        precondition(counts == [send.count], "allgatherVariable: counts \(counts) for one rank sending \(send.count) bytes")
        precondition(receive.count == send.count, "allgatherVariable: receive holds \(receive.count) bytes, expected \(send.count)")
        receive.copyMemory(from: send)
    }

    public func abort(code: Int32) -> Never {
        exit(code)
    }
}
