import Foundation
import TestSupport
import XCTest

/// Runs the scenarios of Tests/MPITestHarness under `mpirun -np 2` and checks what the
/// ranks report. The harness is an executable target of this package, so `swift test` builds
/// it into the same directory as the test bundle.
final class MPILaunchTests: XCTestCase {
    typealias Outcome = ProcessOutcome

    /// Generous for a job that takes about a second, but short enough that a hang fails fast.
    let timeout: Double = 30

    func harnessURL() throws -> URL { try Launcher.builtProduct("MPITestHarness") }

    func mpirunURL() throws -> URL { try Launcher.mpirun() }

    func run(_ executable: URL, _ arguments: [String], environment extra: [String: String] = [:]) throws -> Outcome {
        try Launcher.run(executable, arguments, environment: extra, timeout: timeout)
    }

    func mpirun(_ scenario: String, ranks: Int = 2) throws -> Outcome {
        try run(try mpirunURL(), Launcher.mpirunArguments(ranks: ranks) + [try harnessURL().path, scenario])
    }

    /// Both ranks must report success, and the job must exit cleanly.
    func assertPasses(_ scenario: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let outcome = try mpirun(scenario)
        XCTAssertEqual(outcome.status, 0, "\(scenario) failed:\n\(outcome.stdout)\n\(outcome.stderr)", file: file, line: line)
        for rank in 0..<2 {
            XCTAssertTrue(outcome.stdout.contains("rank \(rank)/2 PASS \(scenario)"),
                          "rank \(rank) did not pass \(scenario):\n\(outcome.stdout)\n\(outcome.stderr)", file: file, line: line)
        }
    }

    func testSameBinaryRunsAsOneProcessWithoutMPIRun() throws {
        let outcome = try run(try harnessURL(), ["world-size"])
        XCTAssertEqual(outcome.status, 0, outcome.stderr)
        XCTAssertTrue(outcome.stdout.contains("world size 1, rank 0, communicator SingleProcessCommunicator"), outcome.stdout)
    }

    func testFactoryPicksMPIUnderMPIRun() throws {
        let outcome = try mpirun("world-size")
        XCTAssertEqual(outcome.status, 0, outcome.stderr)
        for rank in 0..<2 {
            XCTAssertTrue(outcome.stdout.contains("world size 2, rank \(rank), communicator MPICommunicator"), outcome.stdout)
        }
    }

    func testAllreduceSumMeanMaxMinOfFloatAndDouble() throws { try assertPasses("allreduce") }

    func testBroadcastOfBuffersStringsDataRNGStateAndTensors() throws { try assertPasses("broadcast") }

    func testAllgatherOfScalarsAndVariableLengthData() throws { try assertPasses("allgather") }

    func testGradientSynchronizerGivesExactMeanIdenticalOnBothRanks() throws { try assertPasses("gradsync") }

    func testOverlappedAllreduceGivesTheBlockingGradientsBitForBit() throws { try assertPasses("gradsync-overlap") }

    func testSharedMemoryAllreduceGivesMPIsGradientsBitForBit() throws { try assertPasses("gradsync-shared") }
    func testShardedUpdatesGatherReachesEveryRankBitForBit() throws { try assertPasses("gather") }

    func testShapeMismatchNamesRankAndParameter() throws {
        try assertPasses("shape-mismatch")
        let outcome = try mpirun("shape-mismatch")
        XCTAssertTrue(outcome.stdout.contains("rank 1 differs from rank 0 in the shape of 'block.1.weight'"), outcome.stdout)
    }

    func testFailingRankAbortsTheJobQuickly() throws {
        let outcome = try mpirun("fail-rank-1")
        XCTAssertEqual(outcome.status, 3, "mpirun should exit with the failing rank's code:\n\(outcome.stderr)")
        XCTAssertTrue(outcome.stderr.contains("rank 1: loss at step 3 is nan"), outcome.stderr)
        XCTAssertFalse(outcome.stdout.contains("PASS"), outcome.stdout)
        XCTAssertLessThan(outcome.seconds, 10, "the job should end as soon as rank 1 aborts, not hang")
    }
}
