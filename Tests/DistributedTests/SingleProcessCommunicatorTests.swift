import Foundation
import Tensor
import XCTest
@testable import Distributed

/// A world of one: collectives are identities, and nothing touches MPI.
final class SingleProcessCommunicatorTests: XCTestCase {
    let comm = SingleProcessCommunicator()

    func testIdentityAndRoot() throws {
        XCTAssertEqual(comm.rank, 0)
        XCTAssertEqual(comm.size, 1)
        XCTAssertTrue(comm.isRoot)
        try comm.barrier()
    }

    func testAllreduceLeavesValuesAndMeanIsIdentity() throws {
        var f: [Float] = [1.5, -2, .greatestFiniteMagnitude]
        for op in [ReduceOperation.sum, .max, .min] {
            try f.withUnsafeMutableBufferPointer { try comm.allreduce($0, op: op) }
        }
        try f.withUnsafeMutableBufferPointer { try comm.allreduceMean($0) }
        XCTAssertEqual(f, [1.5, -2, .greatestFiniteMagnitude])
        var d: [Double] = [3.25]
        try d.withUnsafeMutableBufferPointer { try comm.allreduceMean($0) }
        XCTAssertEqual(d, [3.25])
        XCTAssertEqual(try comm.allreduce(7, op: .sum), 7)
        XCTAssertEqual(try comm.allreduceMean(2.5), 2.5)
        let t = Tensor(shape: [2], scalars: [4, 5])
        try comm.allreduceMean(t)
        XCTAssertEqual(t.scalars, [4, 5])
    }

    func testBroadcastReturnsRootValues() throws {
        XCTAssertEqual(try comm.broadcast("config: 1", root: 0), "config: 1")
        XCTAssertEqual(try comm.broadcast(Data([1, 2, 3]), root: 0), Data([1, 2, 3]))
        let state: [UInt64] = [1, 2, 3, .max]
        XCTAssertEqual(try comm.broadcast(state, root: 0), state)
        XCTAssertEqual(try comm.broadcast(Int64(-9), root: 0), -9)
        let t = Tensor(shape: [3], scalars: [1, 2, 3])
        try comm.broadcast([t], root: 0)
        XCTAssertEqual(t.scalars, [1, 2, 3])
    }

    func testAllgatherHasOneEntry() throws {
        XCTAssertEqual(try comm.allgather(Float(2.5)), [2.5])
        XCTAssertEqual(try comm.allgather(Double(-1)), [-1])
        XCTAssertEqual(try comm.allgather(42), [42])
        XCTAssertEqual(try comm.allgather([Int64(1), 2, 3]), [[1, 2, 3]])
        XCTAssertEqual(try comm.allgather([Float]()), [[]])
        XCTAssertEqual(try comm.allgather(Data("abc".utf8)), [Data("abc".utf8)])
    }

    func testFactoryChoosesSingleProcessWithoutLauncher() throws {
        XCTAssertFalse(Communicators.launchedUnderMPI(environment: ["PATH": "/usr/bin"]))
        XCTAssertTrue(Communicators.launchedUnderMPI(environment: ["OMPI_COMM_WORLD_SIZE": "2"]))
        XCTAssertTrue(Communicators.launchedUnderMPI(environment: ["PMI_SIZE": "4"]))
        XCTAssertTrue(Communicators.launchedUnderMPI(environment: ["PMIX_RANK": "0"]))
        let made = try Communicators.make(environment: [:])
        XCTAssertTrue(made is SingleProcessCommunicator)
        XCTAssertEqual(made.size, 1)
    }

    func testShapeVerificationPassesAlone() throws {
        try GradientSynchronizer.verifyShapesMatch(parameters: [("w", [2, 3]), ("b", [3])], communicator: comm)
    }
}
