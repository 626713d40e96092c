import CMPI
import Foundation

/// `MPI_COMM_WORLD` of a job started by `mpirun`.
///
/// MPI is initialised once per process (with `MPI_THREAD_FUNNELED`: worker threads compute,
/// only the thread that called `world()` communicates) and finalised once at exit. Errors
/// are set to return instead of aborting, so a failing collective becomes a thrown
/// `CommunicatorError` naming the rank rather than a silent job abort.
public final class MPICommunicator: Communicator {
    public let rank: Int
    public let size: Int
    let comm: MPI_Comm
    /// A duplicate frees its MPI communicator when released; the world is never freed.
    private let ownsCommunicator: Bool

    private static let lock = NSLock()
    private static var shared: MPICommunicator?

    /// The world communicator, initialising MPI on first use.
    public static func world() throws -> MPICommunicator {
        lock.lock()
        defer { lock.unlock() }
        if let shared { return shared }
        let made = try MPICommunicator()
        shared = made
        return made
    }

    private init() throws {
        var initialized: Int32 = 0
        MPI_Initialized(&initialized)
        if initialized == 0 {
            var provided: Int32 = 0
            let code = MPI_Init_thread(nil, nil, Int32(MPI_THREAD_FUNNELED), &provided)
            guard code == MPI_SUCCESS else {
                throw CommunicatorError.transport(rank: -1, operation: "MPI_Init_thread", code: code,
                                                  message: MPICommunicator.errorString(code))
            }
            // Finalise exactly once, after everything else in the process is done with MPI.
            atexit {
                var finalized: Int32 = 0
                MPI_Finalized(&finalized)
                if finalized == 0 { MPI_Finalize() }
            }
        }
        comm = ldm_comm_world()
        MPI_Comm_set_errhandler(comm, ldm_errors_return())
        var r: Int32 = 0, s: Int32 = 0
        MPI_Comm_rank(comm, &r)
        MPI_Comm_size(comm, &s)
        rank = Int(r)
        size = Int(s)
        ownsCommunicator = false
    }

    private init(duplicate: MPI_Comm, rank: Int, size: Int) {
        comm = duplicate
        self.rank = rank
        self.size = size
        ownsCommunicator = true
    }

    deinit {
        guard ownsCommunicator else { return }
        var finalized: Int32 = 0
        MPI_Finalized(&finalized)
        if finalized == 0 {
            var c: MPI_Comm? = comm
            MPI_Comm_free(&c)
        }
    }

    public func duplicate() throws -> Communicator {
        var copy: MPI_Comm?
        try check(MPI_Comm_dup(comm, &copy), "MPI_Comm_dup")
        guard let copy else {
            throw CommunicatorError.transport(rank: rank, operation: "MPI_Comm_dup", code: -1, message: "no communicator returned")
        }
        MPI_Comm_set_errhandler(copy, ldm_errors_return())
        return MPICommunicator(duplicate: copy, rank: rank, size: size)
    }

    /// MPI_Iallreduce in place, in the same chunks as `allreduce`; the requests are tested and
    /// waited for together.
    public func startAllreduce(_ buffer: UnsafeMutableBufferPointer<Float>, op: ReduceOperation) throws -> CollectiveRequest {
        let request = MPIRequest(rank: rank, operation: "MPI_Iallreduce(\(op)) of \(buffer.count) Float")
        guard let base = buffer.baseAddress, buffer.count > 0 else { return request }
        var offset = 0
        while offset < buffer.count {
            let n = min(MPICommunicator.maxChunk, buffer.count - offset)
            var handle: MPI_Request? = ldm_request_null()
            try check(MPI_Iallreduce(UnsafeRawPointer(ldm_in_place()), base + offset, Int32(n), ldm_float(), mpiOp(op), comm, &handle),
                      request.operation)
            request.handles.append(handle)
            offset += n
        }
        return request
    }

    static func errorString(_ code: Int32) -> String {
        var text = [CChar](repeating: 0, count: Int(ldm_max_error_string()) + 1)
        var length: Int32 = 0
        guard MPI_Error_string(code, &text, &length) == MPI_SUCCESS else { return "unknown error" }
        return String(cString: text)
    }

    private func check(_ code: Int32, _ operation: @autoclosure () -> String) throws {
        guard code != MPI_SUCCESS else { return }
        throw CommunicatorError.transport(rank: rank, operation: operation(), code: code,
                                          message: MPICommunicator.errorString(code))
    }

    /// MPI counts are Int32; larger buffers go in chunks (the same chunks on every rank).
    private static let maxChunk = 1 << 30

    public func barrier() throws {
        try check(MPI_Barrier(comm), "MPI_Barrier")
    }

    public func broadcast(bytes: UnsafeMutableRawBufferPointer, root: Int) throws {
        checkRoot(root, "broadcast")
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        var offset = 0
        while offset < bytes.count {
            let n = min(MPICommunicator.maxChunk, bytes.count - offset)
            try check(MPI_Bcast(base + offset, Int32(n), ldm_uint8(), Int32(root), comm),
                      "MPI_Bcast of \(bytes.count) bytes from root \(root)")
            offset += n
        }
    }

    private func mpiOp(_ op: ReduceOperation) -> MPI_Op {
        switch op {
        case .sum: return ldm_op_sum()
        case .max: return ldm_op_max()
        case .min: return ldm_op_min()
        }
    }

    private func allreduceInPlace(_ base: UnsafeMutableRawPointer?, count: Int, stride: Int,
                                  type: MPI_Datatype, op: ReduceOperation, typeName: String) throws {
        guard let base, count > 0 else { return }
        var offset = 0
        while offset < count {
            let n = min(MPICommunicator.maxChunk, count - offset)
            try check(MPI_Allreduce(UnsafeRawPointer(ldm_in_place()), base + offset * stride, Int32(n), type, mpiOp(op), comm),
                      "MPI_Allreduce(\(op)) of \(count) \(typeName)")
            offset += n
        }
    }

    public func allreduce(_ buffer: UnsafeMutableBufferPointer<Float>, op: ReduceOperation) throws {
        try allreduceInPlace(UnsafeMutableRawPointer(buffer.baseAddress), count: buffer.count, stride: 4,
                             type: ldm_float(), op: op, typeName: "Float")
    }

    public func allreduce(_ buffer: UnsafeMutableBufferPointer<Double>, op: ReduceOperation) throws {
        try allreduceInPlace(UnsafeMutableRawPointer(buffer.baseAddress), count: buffer.count, stride: 8,
                             type: ldm_double(), op: op, typeName: "Double")
    }

    public func allreduce(_ buffer: UnsafeMutableBufferPointer<Int64>, op: ReduceOperation) throws {
        try allreduceInPlace(UnsafeMutableRawPointer(buffer.baseAddress), count: buffer.count, stride: 8,
                             type: ldm_int64(), op: op, typeName: "Int64")
    }

    public func allgather(bytes send: UnsafeRawBufferPointer, into receive: UnsafeMutableRawBufferPointer) throws {
        precondition(receive.count == send.count * size,
                     "allgather: receive holds \(receive.count) bytes, \(size) ranks × \(send.count) needs \(send.count * size)")
        precondition(receive.count <= Int(Int32.max), "allgather: \(receive.count) bytes exceeds MPI's Int32 counts")
        guard send.count > 0 else { return }
        try check(MPI_Allgather(send.baseAddress, Int32(send.count), ldm_uint8(),
                                receive.baseAddress, Int32(send.count), ldm_uint8(), comm),
                  "MPI_Allgather of \(send.count) bytes per rank")
    }

    public func allgatherVariable(bytes send: UnsafeRawBufferPointer, counts: [Int],
                                  into receive: UnsafeMutableRawBufferPointer) throws {
        precondition(counts.count == size, "allgatherVariable: \(counts.count) counts for \(size) ranks")
        precondition(counts[rank] == send.count, "allgatherVariable: rank \(rank) sends \(send.count) bytes, counts say \(counts[rank])")
        let total = counts.reduce(0, +)
        precondition(receive.count == total, "allgatherVariable: receive holds \(receive.count) bytes, counts sum to \(total)")
        precondition(total <= Int(Int32.max), "allgatherVariable: \(total) bytes exceeds MPI's Int32 counts")
        guard total > 0 else { return }
        let counts32 = counts.map { Int32($0) }
        var displacements = [Int32](repeating: 0, count: size)
        for r in 1..<max(size, 1) { displacements[r] = displacements[r - 1] + counts32[r - 1] }
        // MPI reads nothing from a zero-length send, but wants a valid address.
        var dummy: UInt8 = 0
        try withUnsafeMutablePointer(to: &dummy) { dummyPointer in
            let sendBase = send.baseAddress ?? UnsafeRawPointer(dummyPointer)
            try check(MPI_Allgatherv(sendBase, Int32(send.count), ldm_uint8(), receive.baseAddress,
                                     counts32, displacements, ldm_uint8(), comm),
                      "MPI_Allgatherv of \(total) bytes")
        }
    }

    public func sharedMemory(bytes: Int) throws -> SharedMemory? {
        try MPISharedWindow.make(on: comm, rank: rank, size: size, bytes: bytes)
    }

    public func abort(code: Int32) -> Never {
        MPI_Abort(comm, code)
        exit(code)  // MPI_Abort does not return; this only satisfies the type checker.
    }
}

/// The MPI requests of one started collective (one per chunk).
final class MPIRequest: CollectiveRequest {
    let rank: Int
    let operation: String
    var handles: [MPI_Request?] = []

    init(rank: Int, operation: String) {
        self.rank = rank
        self.operation = operation
    }

    private func check(_ code: Int32, _ call: String) throws {
        guard code != MPI_SUCCESS else { return }
        throw CommunicatorError.transport(rank: rank, operation: "\(call) of \(operation)", code: code,
                                          message: MPICommunicator.errorString(code))
    }

    func test() throws -> Bool {
        var done = true
        // A completed handle becomes MPI_REQUEST_NULL, which tests as complete.
        for i in handles.indices {
            var flag: Int32 = 0
            try check(MPI_Test(&handles[i], &flag, ldm_status_ignore()), "MPI_Test")
            if flag == 0 { done = false }
        }
        return done
    }

    func wait() throws {
        for i in handles.indices { try check(MPI_Wait(&handles[i], ldm_status_ignore()), "MPI_Wait") }
    }
}
