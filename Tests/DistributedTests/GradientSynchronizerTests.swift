import Foundation
import Tensor
import XCTest
@testable import Distributed

/// A simulated world of `size` ranks for one real rank: allreduce adds what the other ranks
/// would contribute (supplied per call), and every call is recorded, so the bucketing can be
/// checked without MPI.
final class RecordingCommunicator: Communicator {
    let rank = 0
    let size: Int
    /// Element counts of each allreduce, in call order.
    var allreduceCounts: [Int] = []
    /// The sum of the other ranks' contributions to the next allreduce, by call index.
    var othersContribution: (Int, Int) -> Float = { _, _ in 0 }

    init(size: Int) { self.size = size }

    func barrier() throws {}
    func broadcast(bytes: UnsafeMutableRawBufferPointer, root: Int) throws {}
    func allreduce(_ buffer: UnsafeMutableBufferPointer<Float>, op: ReduceOperation) throws {
        precondition(op == .sum)
        let call = allreduceCounts.count
        allreduceCounts.append(buffer.count)
        for i in buffer.indices { buffer[i] += othersContribution(call, i) }
    }
    func allreduce(_ buffer: UnsafeMutableBufferPointer<Double>, op: ReduceOperation) throws { fatalError("unused") }
    func allreduce(_ buffer: UnsafeMutableBufferPointer<Int64>, op: ReduceOperation) throws { fatalError("unused") }
    func allgather(bytes send: UnsafeRawBufferPointer, into receive: UnsafeMutableRawBufferPointer) throws { fatalError("unused") }
    func allgatherVariable(bytes send: UnsafeRawBufferPointer, counts: [Int], into receive: UnsafeMutableRawBufferPointer) throws {
        fatalError("unused")
    }
    func abort(code: Int32) -> Never { fatalError("abort \(code)") }
}

final class GradientSynchronizerTests: XCTestCase {
    func testBucketsKeepOrderAndCapacity() {
        // Capacity 100 floats: 30+50 fit, +40 would not; 250 is alone (larger than a
        // bucket); 10+0+90 fill a bucket exactly; 1 starts the last.
        let counts = [30, 50, 40, 250, 10, 0, 90, 1]
        let buckets = GradientSynchronizer.planBuckets(elementCounts: counts, capacityBytes: 400)
        XCTAssertEqual(buckets.map(\.parameterIndices), [0..<2, 2..<3, 3..<4, 4..<7, 7..<8])
        XCTAssertEqual(buckets.map(\.elementCount), [80, 40, 250, 100, 1])
        XCTAssertEqual(buckets.map(\.offsets), [[0, 30], [0], [0], [0, 10, 10], [0]])
    }

    func testEverythingInOneBucketWhenSmall() {
        let buckets = GradientSynchronizer.planBuckets(elementCounts: [3, 4, 5], capacityBytes: 25 << 20)
        XCTAssertEqual(buckets.map(\.parameterIndices), [0..<3])
        XCTAssertEqual(buckets.map(\.elementCount), [12])
        XCTAssertEqual(GradientSynchronizer.planBuckets(elementCounts: [], capacityBytes: 64), [])
    }

    func testDefaultCapacityIs25MiB() {
        let sync = GradientSynchronizer(parameters: [Tensor(zeros: [2])], communicator: SingleProcessCommunicator())
        XCTAssertEqual(sync.bucketCapacityBytes, 25 * 1024 * 1024)
    }

    func testSingleProcessKeepsGradientsAndFillsMissingWithZeros() throws {
        let a = Tensor(zeros: [2, 3]), b = Tensor(zeros: [4])
        a.grad = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        let sync = GradientSynchronizer(parameters: [a, b], communicator: SingleProcessCommunicator(), bucketCapacityBytes: 8)
        try sync.synchronize()
        XCTAssertEqual(a.grad?.scalars, [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(b.grad?.scalars, [0, 0, 0, 0])
        XCTAssertEqual(b.grad?.shape, [4])
    }

    func testMeanAcrossSimulatedRanksWithOneAllreducePerBucket() throws {
        let shapes: [[Int]] = [[3, 4], [5], [40], [2, 2], [7]]
        let params = shapes.enumerated().map { i, s in
            Tensor(repeating: 0, shape: s).withGrad(i == 3 ? nil : randn(s, seed: UInt64(i)))
        }
        let comm = RecordingCommunicator(size: 4)
        // The other three ranks together add 3 * (10 + element index within the bucket).
        comm.othersContribution = { _, i in 3 * (10 + Float(i)) }
        let sync = GradientSynchronizer(parameters: params, communicator: comm, bucketCapacityBytes: 20 * 4)
        XCTAssertEqual(sync.buckets.map(\.parameterIndices), [0..<2, 2..<3, 3..<5])
        let before = params.map { $0.grad?.scalars ?? [Float](repeating: 0, count: $0.count) }
        for step in 0..<2 {
            for (p, g) in zip(params, before) where p.grad != nil || step == 1 {
                p.grad = Tensor(shape: p.shape, scalars: g)
            }
            comm.allreduceCounts = []
            try sync.synchronize()
            XCTAssertEqual(comm.allreduceCounts, [17, 40, 11], "one allreduce per bucket, in bucket order")
            for (b, bucket) in sync.buckets.enumerated() {
                for (i, offset) in zip(bucket.parameterIndices, bucket.offsets) {
                    let g = try XCTUnwrap(params[i].grad, "parameter \(i) has a gradient after synchronize")
                    for j in 0..<params[i].count {
                        let expected = (before[i][j] + 3 * (10 + Float(offset + j))) / 4
                        XCTAssertEqual(g.pointer[j], expected, accuracy: 1e-6, "step \(step) bucket \(b) parameter \(i)[\(j)]")
                    }
                }
            }
        }
    }

    func testOverlappedBucketsFollowTheGivenOrderWithASmallFirstBucket() {
        // Capacity 100 floats, first bucket 20: order 4, 3, 2, 1, 0 as gradients become ready.
        let counts = [30, 50, 40, 15, 10]
        let buckets = OverlappedAllreduce.planBuckets(order: [4, 3, 2, 1, 0], elementCounts: counts,
                                                      capacityBytes: 400, firstCapacityBytes: 80)
        XCTAssertEqual(buckets.map(\.parameterIndices), [[4], [3, 2], [1, 0]])
        XCTAssertEqual(buckets.map(\.offsets), [[0], [0, 15], [0, 50]])
        XCTAssertEqual(buckets.map(\.elementCount), [10, 55, 80])
    }

    /// A tiny network's backward through the overlapped path: the first step plans buckets in
    /// the order gradients became ready, later steps start each bucket inside backward, and
    /// every step gives the blocking path's gradients bit for bit (a parameter outside the
    /// graph counts as zeros in both).
    func testOverlapStartsBucketsInsideBackwardAndGivesTheBlockingGradients() throws {
        let shapes: [[Int]] = [[4, 8], [8, 8], [8, 8], [8, 3], [5]]
        func network(seed: UInt64) -> [Tensor] {
            shapes.enumerated().map { i, s in
                let t = randn(s, seed: seed + UInt64(i))
                t.requiresGrad = true
                return t
            }
        }
        func loss(_ w: [Tensor], step: Int) -> Tensor {
            var h = randn([6, 4], seed: 100 + UInt64(step))
            for layer in w.prefix(4) { h = h.matmul(layer).relu() + h.matmul(layer) * 0.1 }
            return (h * h).mean()  // w[4] is never used
        }
        let blockingComm = RecordingCommunicator(size: 2), overlapComm = RecordingCommunicator(size: 2)
        for comm in [blockingComm, overlapComm] { comm.othersContribution = { _, _ in 0.75 } }
        let a = network(seed: 1), b = network(seed: 1)
        let blocking = GradientSynchronizer(parameters: a, communicator: blockingComm, bucketCapacityBytes: 70 * 4)
        let overlapped = GradientSynchronizer(parameters: b, communicator: overlapComm, bucketCapacityBytes: 70 * 4)
        try overlapped.enableOverlap()
        XCTAssertTrue(overlapped.overlapsBackward)
        for step in 0..<3 {
            blocking.backward(loss(a, step: step), reduce: true)
            try blocking.synchronize()
            overlapComm.allreduceCounts = []
            overlapped.backward(loss(b, step: step), reduce: true)
            let startedInsideBackward = overlapComm.allreduceCounts
            try overlapped.synchronize()
            if step == 0 {
                XCTAssertEqual(startedInsideBackward, [], "the first backward only records the ready order")
                // Ready order: the last layer first; the unused parameter last.
                XCTAssertEqual(overlapped.overlappedBuckets.map(\.parameterIndices), [[3], [2], [1], [0, 4]])
            } else {
                XCTAssertEqual(startedInsideBackward, [24, 64, 64, 32 + 5], "every bucket starts inside backward, in order")
            }
            for (i, (p, q)) in zip(a, b).enumerated() {
                let ga = try XCTUnwrap(p.grad), gb = try XCTUnwrap(q.grad)
                XCTAssertTrue(ga.scalars.allSatisfy(\.isFinite))
                XCTAssertEqual(ga.scalars.map(\.bitPattern), gb.scalars.map(\.bitPattern), "step \(step) parameter \(i)")
            }
            XCTAssertEqual(b[4].grad?.scalars, [Float](repeating: 0.375, count: 5), "no gradient: (0 + 0.75) / 2")
            for t in a + b { t.grad = nil }
        }
    }

    func testSignatureDifferenceNamesRankAndParameter() {
        let reference = ParameterSignature([("enc.weight", [4, 2]), ("enc.bias", [4])])
        XCTAssertNil(reference.firstDifference(from: reference, referenceRank: 0, otherRank: 1))
        let reshaped = ParameterSignature([("enc.weight", [4, 3]), ("enc.bias", [4])])
        let shape = reference.firstDifference(from: reshaped, referenceRank: 0, otherRank: 1)
        XCTAssertEqual(shape, "rank 1 differs from rank 0 in the shape of 'enc.weight' at parameter #0: "
                       + "rank 0 has 'enc.weight' [4, 2], rank 1 has 'enc.weight' [4, 3]")
        let renamed = ParameterSignature([("enc.weight", [4, 2]), ("enc.b", [4])])
        XCTAssertTrue(reference.firstDifference(from: renamed, referenceRank: 0, otherRank: 2)!
            .contains("rank 2 differs from rank 0 in the name at parameter #1"))
        let shorter = ParameterSignature([("enc.weight", [4, 2])])
        XCTAssertEqual(reference.firstDifference(from: shorter, referenceRank: 0, otherRank: 1),
                       "rank 1 has 1 parameters, rank 0 has 2; first unmatched is parameter #1 'enc.bias' [4] on rank 0")
        XCTAssertNotEqual(reference.digest, reshaped.digest)
        XCTAssertEqual(reference.digest, ParameterSignature([("enc.weight", [4, 2]), ("enc.bias", [4])]).digest)
        XCTAssertEqual(try ParameterSignature.decoded(reference.encoded()), reference)
    }
}

private extension Tensor {
    func withGrad(_ g: Tensor?) -> Tensor { grad = g; return self }
}

/// A deterministic N(0, 1) tensor.
func randn(_ shape: [Int], seed: UInt64) -> Tensor {
    var g = RandomGenerator(seed: seed)
    return Tensor.randomNormal(shape, generator: &g)
}
