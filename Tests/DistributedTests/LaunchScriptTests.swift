import Foundation
import XCTest

/// Launch/train.sh with LDM_BINARY pointing at the MPI test harness: proves the mpirun
/// plumbing (rank count, thread variables, argument pass-through, exit codes) without ldm.
extension MPILaunchTests {
    func trainScript() -> URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Launch/train.sh")
    }

    func launch(_ arguments: [String]) throws -> Outcome {
        _ = try mpirunURL()  // skips when Open MPI is not installed
        return try run(trainScript(), arguments, environment: ["LDM_BINARY": try harnessURL().path])
    }

    func testTrainScriptRunsRanksWithThreadsSplitAndArgumentsIntact() throws {
        let outcome = try launch(["-n", "2", "--", "launch-env", "two words", "--resume", "latest"])
        XCTAssertEqual(outcome.status, 0, outcome.stderr)
        let threads = max(1, ProcessInfo.processInfo.activeProcessorCount / 2)
        let coreType = ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] ?? "unset"
        for rank in 0..<2 {
            XCTAssertTrue(outcome.stdout.contains(
                "rank \(rank)/2 MPICommunicator LDM_NUM_THREADS=\(threads) OPENBLAS_NUM_THREADS=\(threads) "
                    + "OPENBLAS_CORETYPE=\(coreType) parallel=\(threads)"), outcome.stdout)
            XCTAssertTrue(outcome.stdout.contains("args=<two words> <--resume> <latest>"), outcome.stdout)
        }
    }

    func testTrainScriptHonoursThreadsPerRank() throws {
        let outcome = try launch(["-n", "2", "-t", "3", "--", "launch-env"])
        XCTAssertEqual(outcome.status, 0, outcome.stderr)
        for rank in 0..<2 {
            XCTAssertTrue(outcome.stdout.contains("rank \(rank)/2 MPICommunicator LDM_NUM_THREADS=3 OPENBLAS_NUM_THREADS=3"), outcome.stdout)
            XCTAssertTrue(outcome.stdout.contains("parallel=3"), outcome.stdout)
        }
    }

    func testTrainScriptWithOneRankRunsWithoutMPI() throws {
        let outcome = try launch(["--", "launch-env"])
        XCTAssertEqual(outcome.status, 0, outcome.stderr)
        let cores = ProcessInfo.processInfo.activeProcessorCount
        XCTAssertTrue(outcome.stdout.contains("rank 0/1 SingleProcessCommunicator LDM_NUM_THREADS=\(cores)"), outcome.stdout)
    }

    func testTrainScriptPassesOnTheFailingRanksExitCode() throws {
        let outcome = try launch(["-n", "2", "--", "fail-rank-1"])
        XCTAssertEqual(outcome.status, 3, outcome.stderr)
        XCTAssertTrue(outcome.stderr.contains("rank 1: loss at step 3 is nan"), outcome.stderr)
    }

    func testMultinodeScriptTakesRanksFromTheHostfile() throws {
        // "localhost" is launched without ssh, so a one-line hostfile exercises the script here.
        let hostfile = FileManager.default.temporaryDirectory.appendingPathComponent("hostfile-\(UUID().uuidString)")
        try "# test hosts\nlocalhost slots=2  # both ranks here\n\n".write(to: hostfile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: hostfile) }
        let script = trainScript().deletingLastPathComponent().appendingPathComponent("train-multinode.sh")
        _ = try mpirunURL()
        let outcome = try run(script, ["-f", hostfile.path, "--", "launch-env", "a b"],
                              environment: ["LDM_BINARY": try harnessURL().path])
        XCTAssertEqual(outcome.status, 0, outcome.stderr)
        let threads = max(1, ProcessInfo.processInfo.activeProcessorCount / 2)
        for rank in 0..<2 {
            XCTAssertTrue(outcome.stdout.contains("rank \(rank)/2 MPICommunicator LDM_NUM_THREADS=\(threads)"), outcome.stdout)
        }
        XCTAssertTrue(outcome.stdout.contains("args=<a b>"), outcome.stdout)
    }

    func testTrainScriptRejectsBadUsage() throws {
        let missing = try launch(["-n", "2"])
        XCTAssertEqual(missing.status, 2)
        XCTAssertTrue(missing.stderr.contains("put the subcommand after --"), missing.stderr)
        let zero = try launch(["-n", "0", "--", "launch-env"])
        XCTAssertEqual(zero.status, 2)
        XCTAssertTrue(zero.stderr.contains("-n RANKS must be a whole number ≥ 1, got '0'"), zero.stderr)
    }
}
