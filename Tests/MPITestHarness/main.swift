// Multi-rank scenarios for DistributedTests, run as
//   mpirun -np 2 MPITestHarness <scenario>
// Each rank checks its own results and prints "rank R/N PASS <scenario>" to stdout; any
// failed check prints "rank R: FAIL ..." to stderr and exits non-zero, which fails the job.
import Distributed
import Foundation
import Tensor

let scenario = CommandLine.arguments.dropFirst().first ?? ""
let comm: Communicator = RankFailure.guarding("creating the communicator", communicator: SingleProcessCommunicator()) {
    try Communicators.make()
}
var failures: [String] = []

func expect(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { failures.append(message()) }
}

func requireTwoRanks() {
    guard comm.size == 2 else {
        FileHandle.standardError.write(Data("rank \(comm.rank): scenario \(scenario) needs 2 ranks, world has \(comm.size)\n".utf8))
        exit(2)
    }
}

/// Deterministic per-rank values, reproducible by every rank for any rank.
func values(rank: Int, count: Int, seed: UInt64) -> [Float] {
    var g = RandomGenerator(seed: seed &+ UInt64(rank))
    var v = [Float](repeating: 0, count: count)
    v.withUnsafeMutableBufferPointer { g.fillNormal($0) }
    return v
}

func scenarioAllreduce() throws {
    requireTwoRanks()
    let r = comm.rank
    // Float: large enough to exercise the real transport, not just a latency-bound message.
    let n = 1 << 20
    let mine = values(rank: r, count: n, seed: 1), other = values(rank: 1 - r, count: n, seed: 1)
    let first = r == 0 ? mine : other, second = r == 0 ? other : mine
    for op in [ReduceOperation.sum, .max, .min] {
        var buffer = mine
        try buffer.withUnsafeMutableBufferPointer { try comm.allreduce($0, op: op) }
        var wrong = 0
        for i in 0..<n {
            let expected: Float
            switch op {
            case .sum: expected = first[i] + second[i]
            case .max: expected = max(first[i], second[i])
            case .min: expected = min(first[i], second[i])
            }
            if buffer[i].bitPattern != expected.bitPattern { wrong += 1 }
        }
        expect(wrong == 0, "Float allreduce \(op): \(wrong) of \(n) elements differ")
    }
    var mean = mine
    try mean.withUnsafeMutableBufferPointer { try comm.allreduceMean($0) }
    expect((0..<n).allSatisfy { mean[$0] == (first[$0] + second[$0]) / 2 }, "Float allreduceMean differs from (a + b) / 2")

    // Double, with values that are exact so the expected results are plain numbers.
    var d: [Double] = [Double(r) + 0.5, -Double(r) * 3, 1e300 * Double(r + 1)]
    try d.withUnsafeMutableBufferPointer { try comm.allreduce($0, op: .sum) }
    expect(d == [2, -3, 3e300], "Double sum: \(d)")
    var dmax: [Double] = [Double(r), -Double(r)]
    try dmax.withUnsafeMutableBufferPointer { try comm.allreduce($0, op: .max) }
    expect(dmax == [1, 0], "Double max: \(dmax)")
    var dmin: [Double] = [Double(r), -Double(r)]
    try dmin.withUnsafeMutableBufferPointer { try comm.allreduce($0, op: .min) }
    expect(dmin == [0, -1], "Double min: \(dmin)")
    var dmean: [Double] = [Double(r) * 4 + 1]
    try dmean.withUnsafeMutableBufferPointer { try comm.allreduceMean($0) }
    expect(dmean == [3], "Double mean: \(dmean)")

    // Scalars and tensors.
    expect(try comm.allreduce(r + 10, op: .sum) == 21, "Int sum")
    expect(try comm.allreduceMean(Double(r)) == 0.5, "Double scalar mean")
    let t = Tensor(shape: [2, 2], scalars: [Float(r), 1, 2, Float(r) * 2])
    try comm.allreduceMean(t)
    expect(t.scalars == [0.5, 1, 2, 1], "tensor allreduceMean: \(t.scalars)")
}

func scenarioBroadcast() throws {
    requireTwoRanks()
    let r = comm.rank
    for root in 0..<2 {
        var buffer: [Float] = r == root ? [1.5, -2, 3] : [0, 0, 0]
        try buffer.withUnsafeMutableBufferPointer { try comm.broadcast($0, root: root) }
        expect(buffer == [1.5, -2, 3], "Float broadcast from \(root): \(buffer)")
    }
    var doubles: [Double] = r == 1 ? [.pi, 1e-300] : [0, 0]
    try doubles.withUnsafeMutableBufferPointer { try comm.broadcast($0, root: 1) }
    expect(doubles == [.pi, 1e-300], "Double broadcast: \(doubles)")

    // Variable-length values whose length only the root knows.
    let config = "model:\n  channels: 128\n  name: \"ünet\"\n"
    expect(try comm.broadcast(r == 0 ? config : "", root: 0) == config, "string broadcast")
    let blob = Data((0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
    expect(try comm.broadcast(r == 1 ? blob : Data([9]), root: 1) == blob, "Data broadcast")
    expect(try comm.broadcast(r == 0 ? Data() : Data([1, 2]), root: 0) == Data(), "empty Data broadcast")
    let rng = RandomGenerator(seed: 42).derived(7)
    let state: [UInt64] = try comm.broadcast(r == 0 ? rng.state : [], root: 0)
    expect(state == rng.state, "RNG state broadcast: \(state)")
    expect(try comm.broadcast(Int64(r == 1 ? 123 : -1), root: 1) == 123, "scalar broadcast")

    // Tensors.
    let tensors = [Tensor(repeating: Float(r + 1), shape: [3, 5]), Tensor(repeating: Float(-r), shape: [7])]
    try comm.broadcast(tensors, root: 1)
    expect(tensors[0].scalars.allSatisfy { $0 == 2 } && tensors[1].scalars.allSatisfy { $0 == -1 }, "tensor broadcast")
}

func scenarioAllgather() throws {
    requireTwoRanks()
    let r = comm.rank
    expect(try comm.allgather(Float(r) + 0.25) == [0.25, 1.25], "Float allgather")
    expect(try comm.allgather(Double(r) * 1e10) == [0, 1e10], "Double allgather")
    expect(try comm.allgather(r * 7 - 3) == [-3, 4], "Int allgather")
    // Arrays of different lengths, including an empty one.
    let arrays: [[Int64]] = try comm.allgather(r == 0 ? [] : [5, 6, 7])
    expect(arrays == [[], [5, 6, 7]], "variable Int64 allgather: \(arrays)")
    let datas = try comm.allgather(Data(repeating: UInt8(r + 1), count: 1000 * (r + 1)))
    expect(datas == [Data(repeating: 1, count: 1000), Data(repeating: 2, count: 2000)], "Data allgather sizes \(datas.map(\.count))")
}

/// Parameters of varied sizes, with a bucket capacity small enough to give several buckets
/// (and a parameter larger than a bucket).
let gradShapes: [[Int]] = [[3, 4], [5], [300], [2, 2, 2], [1000], [7], [16, 16]]

/// Rank `rank`'s gradient for parameter `i`, or nil where that rank has none.
func gradient(rank: Int, parameter i: Int) -> [Float]? {
    if i == 1 && rank == 0 { return nil }  // Missing on one rank only: counts as zeros there.
    if i == 5 { return nil }               // Missing everywhere: the mean is zeros.
    return values(rank: rank, count: Tensor.elementCount(gradShapes[i]), seed: 1000 + UInt64(i) * 10)
}

func scenarioGradientSync() throws {
    requireTwoRanks()
    let r = comm.rank
    // Different initial values per rank; broadcastParameters must make them rank 1's.
    let parameters = gradShapes.enumerated().map { i, shape in
        Tensor(shape: shape, scalars: values(rank: r, count: Tensor.elementCount(shape), seed: UInt64(i)))
    }
    let buffer = Tensor(repeating: Float(r) + 3, shape: [4])
    let sync = GradientSynchronizer(parameters: parameters, communicator: comm, bucketCapacityBytes: 1024)
    expect(sync.buckets.count >= 4, "expected several buckets, got \(sync.buckets.count)")
    try sync.verifyShapesMatch(names: gradShapes.indices.map { "layer\($0).weight" })
    try sync.broadcastParameters(buffers: [buffer], from: 1)
    for (i, p) in parameters.enumerated() {
        let expected = values(rank: 1, count: p.count, seed: UInt64(i))
        expect(p.scalars == expected, "parameter \(i) differs from rank 1's after broadcastParameters")
    }
    expect(buffer.scalars == [4, 4, 4, 4], "buffer after broadcastParameters: \(buffer.scalars)")

    // Two steps, to check the reused bucket buffers carry nothing over.
    for step in 0..<2 {
        for (i, p) in parameters.enumerated() {
            p.grad = gradient(rank: r, parameter: i).map { v in Tensor(shape: p.shape, scalars: v.map { $0 * Float(step + 1) }) }
        }
        try sync.synchronize()
        var allBytes = Data()
        for (i, p) in parameters.enumerated() {
            guard let g = p.grad else { expect(false, "parameter \(i) has no gradient after synchronize"); continue }
            let count = p.count
            let a = gradient(rank: 0, parameter: i) ?? [Float](repeating: 0, count: count)
            let b = gradient(rank: 1, parameter: i) ?? [Float](repeating: 0, count: count)
            let scale = Float(step + 1)
            let wrong = (0..<count).filter { g.pointer[$0].bitPattern != ((a[$0] * scale + b[$0] * scale) / 2).bitPattern }
            expect(wrong.isEmpty, "step \(step) parameter \(i): \(wrong.count) of \(count) gradient elements are not the exact mean")
            allBytes.append(UnsafeBufferPointer(start: g.pointer, count: count))
        }
        let gathered = try comm.allgather(allBytes)
        expect(gathered[0] == gathered[1], "step \(step): ranks hold different gradient bytes")
    }
}

/// The overlapped allreduce against the blocking one on the same network and data: the same
/// gradient bits on both paths and both ranks, over several steps (the first plans the
/// buckets) with two micro-batches each (only the last one reduces). The network runs a
/// synchronised BatchNorm, whose collectives on the world communicator happen while buckets
/// are in flight; one weight is used on rank 1 only and one by neither rank.
func scenarioGradientSyncOverlap() throws {
    requireTwoRanks()
    let r = comm.rank
    let shapes: [[Int]] = [[16, 32], [32], [32], [32, 32], [32, 32], [32, 8], [8, 8], [5]]
    func network() -> [Tensor] {
        shapes.enumerated().map { i, shape in
            let t = Tensor(shape: shape, scalars: values(rank: 0, count: Tensor.elementCount(shape), seed: 50 + UInt64(i)))
            t.requiresGrad = true
            return t
        }
    }
    let reducer: BatchNormStatisticsReducer = { buffer in
        RankFailure.guarding("batch norm allreduce", communicator: comm) { try comm.allreduce(buffer, op: .sum) }
    }
    func loss(_ w: [Tensor], step: Int, micro: Int) -> Tensor {
        let x = Tensor(shape: [6, 16], scalars: values(rank: r, count: 96, seed: 900 + UInt64(10 * step + micro)))
        var h = x.matmul(w[0]).batchNorm(weight: w[1], bias: w[2], runningMean: nil, runningVar: nil, training: true,
                                         statisticsReducer: reducer).relu()
        h = h.matmul(w[3]).relu()
        h = h.matmul(w[4]).relu() + h * 0.5
        var out = h.matmul(w[5])
        if r == 1 { out = out.matmul(w[6]) }  // w[6] gets a gradient on rank 1 only; w[7] on neither
        return (out * out).mean()
    }
    let a = network(), b = network()
    let blocking = GradientSynchronizer(parameters: a, communicator: comm, bucketCapacityBytes: 1024)
    let overlapped = GradientSynchronizer(parameters: b, communicator: comm, bucketCapacityBytes: 1024)
    try overlapped.enableOverlap()
    for step in 0..<3 {
        for micro in 0..<2 {
            blocking.backward(loss(a, step: step, micro: micro) * 0.5, reduce: micro == 1)
            overlapped.backward(loss(b, step: step, micro: micro) * 0.5, reduce: micro == 1)
        }
        try blocking.synchronize()
        try overlapped.synchronize()
        var bytes = Data()
        for (i, (p, q)) in zip(a, b).enumerated() {
            guard let ga = p.grad, let gb = q.grad else { expect(false, "step \(step): parameter \(i) has no gradient"); continue }
            let differ = (0..<ga.count).filter { ga.pointer[$0].bitPattern != gb.pointer[$0].bitPattern }.count
            expect(differ == 0, "step \(step) parameter \(i): \(differ) of \(ga.count) elements differ between blocking and overlapped")
            expect(ga.scalars.allSatisfy(\.isFinite), "step \(step) parameter \(i): not finite")
            bytes.append(UnsafeBufferPointer(start: gb.pointer, count: gb.count))
        }
        expect(b[7].grad?.scalars.allSatisfy { $0 == 0 } == true, "the parameter neither rank used has a zero mean")
        expect(b[6].grad?.scalars.contains { $0 != 0 } == true, "the parameter rank 1 used has its half of rank 1's gradient")
        let gathered = try comm.allgather(bytes)
        expect(gathered[0] == gathered[1], "step \(step): ranks hold different gradient bytes")
        for t in a + b { t.grad = nil }
    }
    expect(overlapped.overlapsBackward && overlapped.allreduceTime.calls > blocking.allreduceTime.calls,
           "the overlapped path started and tested its buckets (\(overlapped.allreduceTime.calls) MPI calls)")
}

/// Shared memory between the ranks, then the blocking gradient allreduce through it against
/// the same one through MPI_Allreduce: the same bits (the exact mean) on both paths and both
/// ranks, over odd sizes, many buckets in a row, a NaN, and a parameter without a gradient.
func scenarioGradientSyncSharedMemory() throws {
    requireTwoRanks()
    let r = comm.rank
    guard let memory = try comm.sharedMemory(bytes: 40 + 8 * r) else {
        expect(false, "no shared memory between two ranks on one machine"); return
    }
    let own = memory.region(of: r).assumingMemoryBound(to: UInt8.self), other = memory.region(of: 1 - r)
    for i in 0..<40 { own[i] = UInt8(10 * r + i % 7) }
    try memory.synchronize()
    let seen = (0..<40).map { other.load(fromByteOffset: $0, as: UInt8.self) }
    expect(seen == (0..<40).map { UInt8(10 * (1 - r) + $0 % 7) }, "rank \(r) reads \(seen) in rank \(1 - r)'s region")
    try memory.synchronize()  // both have read before either writes again
    other.storeBytes(of: UInt8(200 + r), toByteOffset: 39, as: UInt8.self)
    try memory.synchronize()
    expect(own[39] == UInt8(201 - r), "rank \(r)'s region holds \(own[39]) where the other rank wrote")

    let shapes: [[Int]] = [[3], [17], [1], [33, 5], [16], [1000], [7, 7], [2]]
    func network() -> [Tensor] { shapes.map { Tensor(zeros: $0) } }
    let a = network(), b = network()
    let viaShared = GradientSynchronizer(parameters: a, communicator: comm, bucketCapacityBytes: 256, transport: .automatic)
    let viaMPI = GradientSynchronizer(parameters: b, communicator: comm, bucketCapacityBytes: 256, transport: .mpi)
    expect(viaShared.buckets.count >= 5, "expected many buckets, got \(viaShared.buckets.count)")
    for step in 0..<3 {
        func grads(rank: Int) -> [[Float]?] {
            shapes.indices.map { i in
                if i == shapes.count - 1 { return nil }  // no gradient on either rank
                var v = values(rank: rank, count: Tensor.elementCount(shapes[i]), seed: 300 + UInt64(10 * step + i))
                if step == 2 && i == 3 && rank == 1 { v[17] = .nan }
                return v
            }
        }
        let mine = grads(rank: r), zero = grads(rank: 0), one = grads(rank: 1)
        for i in shapes.indices {
            a[i].grad = mine[i].map { Tensor(shape: shapes[i], scalars: $0) }
            b[i].grad = mine[i].map { Tensor(shape: shapes[i], scalars: $0) }
        }
        try viaShared.synchronize()
        try viaMPI.synchronize()
        var bytes = Data()
        for i in shapes.indices {
            guard let gs = a[i].grad, let gm = b[i].grad else { expect(false, "step \(step): parameter \(i) has no gradient"); continue }
            let n = gs.count
            let x = zero[i] ?? [Float](repeating: 0, count: n), y = one[i] ?? [Float](repeating: 0, count: n)
            let differ = (0..<n).filter { gs.pointer[$0].bitPattern != gm.pointer[$0].bitPattern }.count
            expect(differ == 0, "step \(step) parameter \(i): \(differ) of \(n) elements differ between shared memory and MPI")
            let notMean = (0..<n).filter { j in
                let expected = (x[j] + y[j]) / 2
                return expected.isNaN ? !gs.pointer[j].isNaN : gs.pointer[j].bitPattern != expected.bitPattern
            }.count
            expect(notMean == 0, "step \(step) parameter \(i): \(notMean) of \(n) elements are not the exact mean")
            bytes.append(UnsafeBufferPointer(start: gs.pointer, count: n))
        }
        expect(a[3].grad.map { $0.pointer[17].isNaN } == (step == 2), "step \(step): the NaN is where rank 1 put it, only there")
        let gathered = try comm.allgather(bytes)
        expect(gathered[0] == gathered[1], "step \(step): ranks hold different gradient bytes")
    }
    expect(viaShared.reducesThroughSharedMemory, "the automatic transport did not use shared memory on one machine")
    expect(!viaMPI.reducesThroughSharedMemory, "LDM_ALLREDUCE=mpi's transport used shared memory")
}

/// The sharded update's all-gather: each rank's share of the tensors reaches the other rank
/// bit for bit, through shared memory (in chunks: the shares exceed its regions) and MPI.
func scenarioGather() throws {
    requireTwoRanks()
    let r = comm.rank
    let shapes: [[Int]] = [[3], [17], [1], [33, 5], [16], [100], [7, 7], [2]]
    let owners = [0..<4, 4..<8]
    for transport in [AllreduceTransport.automatic, .mpi] {
        let parameters = shapes.map { Tensor(zeros: $0) }
        let synchronizer = GradientSynchronizer(parameters: parameters, communicator: comm, bucketCapacityBytes: 256,
                                                transport: transport)
        // Shadows of every parameter but #5 (nil: untracked), owned as the parameters are.
        let tensors: [Tensor?] = shapes.indices.map { $0 == 5 ? nil : Tensor(zeros: shapes[$0]) }
        func owned(_ i: Int, rank: Int) -> [Float] {
            values(rank: rank, count: Tensor.elementCount(shapes[i]), seed: 700 + UInt64(i))
        }
        for i in shapes.indices {
            let owner = owners.firstIndex { $0.contains(i) }!
            // What this rank holds before: its own share's values, garbage elsewhere.
            let held = owner == r ? owned(i, rank: r) : [Float](repeating: .nan, count: Tensor.elementCount(shapes[i]))
            tensors[i]?.pointer.update(from: held, count: held.count)
        }
        try synchronizer.gather(tensors, owners: owners)
        for i in shapes.indices {
            guard let t = tensors[i] else { continue }
            let owner = owners.firstIndex { $0.contains(i) }!
            let expected = owned(i, rank: owner)
            let differ = (0..<t.count).filter { t.pointer[$0].bitPattern != expected[$0].bitPattern }.count
            expect(differ == 0, "\(transport) tensor \(i): \(differ) of \(t.count) elements differ from rank \(owner)'s")
        }
        expect(synchronizer.reducesThroughSharedMemory == (transport == .automatic),
               "\(transport): shared memory used: \(synchronizer.reducesThroughSharedMemory)")
    }
}

func scenarioShapeMismatch() throws {
    requireTwoRanks()
    var parameters: [(name: String, shape: [Int])] = [("block.0.weight", [4, 2]), ("block.1.weight", [4, 2]), ("block.1.bias", [4])]
    if comm.rank == 1 { parameters[1].shape = [4, 3] }
    do {
        try GradientSynchronizer.verifyShapesMatch(parameters: parameters, communicator: comm)
        expect(false, "verifyShapesMatch accepted different shapes")
    } catch let error as CommunicatorError {
        let text = String(describing: error)
        print("rank \(comm.rank) caught: \(text)")
        expect(text.contains("rank 1") && text.contains("block.1.weight") && text.contains("[4, 3]"),
               "mismatch report does not name rank 1 and block.1.weight [4, 3]: \(text)")
    }
    // Equal lists must pass.
    try GradientSynchronizer.verifyShapesMatch(parameters: [("a", [1]), ("b", [2, 3])], communicator: comm)
}

func scenarioFailRank1() throws {
    requireTwoRanks()
    try comm.barrier()
    if comm.rank == 1 {
        RankFailure.requireFinite(Float.nan, "loss at step 3", communicator: comm, code: 3)
    }
    // Rank 0 blocks here for good: only the abort of rank 1 can end the job.
    var x: [Float] = [1]
    try x.withUnsafeMutableBufferPointer { try comm.allreduce($0, op: .sum) }
    expect(false, "rank 0 returned from an allreduce that rank 1 never joined")
}

func scenarioWorldSize() throws {
    print("world size \(comm.size), rank \(comm.rank), communicator \(type(of: comm))")
}

/// What a launcher gave this rank: the world, the thread settings as the kernels see them,
/// and the arguments after the scenario name (for Launch/ script tests).
func scenarioLaunchEnvironment() throws {
    let env = ProcessInfo.processInfo.environment
    let arguments = CommandLine.arguments.dropFirst(2).map { "<\($0)>" }.joined(separator: " ")
    print("rank \(comm.rank)/\(comm.size) \(type(of: comm)) LDM_NUM_THREADS=\(env["LDM_NUM_THREADS"] ?? "unset") "
        + "OPENBLAS_NUM_THREADS=\(env["OPENBLAS_NUM_THREADS"] ?? "unset") OPENBLAS_CORETYPE=\(env["OPENBLAS_CORETYPE"] ?? "unset") "
        + "parallel=\(Parallel.threadCount) blas=\(BLAS.threadCount) args=\(arguments)")
}

let scenarios: [String: () throws -> Void] = [
    "allreduce": scenarioAllreduce, "broadcast": scenarioBroadcast, "allgather": scenarioAllgather,
    "gradsync": scenarioGradientSync, "gradsync-overlap": scenarioGradientSyncOverlap,
    "gradsync-shared": scenarioGradientSyncSharedMemory, "gather": scenarioGather, "shape-mismatch": scenarioShapeMismatch,
    "fail-rank-1": scenarioFailRank1, "world-size": scenarioWorldSize,
    "launch-env": scenarioLaunchEnvironment,
]
guard let run = scenarios[scenario] else {
    FileHandle.standardError.write(Data("usage: MPITestHarness <\(scenarios.keys.sorted().joined(separator: "|"))>\n".utf8))
    exit(2)
}
RankFailure.guarding("scenario \(scenario)", communicator: comm) { try run() }
if !failures.isEmpty {
    RankFailure.abort("FAIL \(scenario): " + failures.joined(separator: "; "), communicator: comm, code: 1)
}
print("rank \(comm.rank)/\(comm.size) PASS \(scenario)")
