import Foundation
import XCTest

/// Runs the scenarios of Tests/MPITestHarness under `mpirun -np 2` and checks what the
/// ranks report. The harness is an executable target of this package, so `swift test` builds
/// it into the same directory as the test bundle.
final class MPILaunchTests: XCTestCase {
    struct Outcome {
        var status: Int32
        var stdout: String
        var stderr: String
        var seconds: Double
    }

    /// Generous for a job that takes about a second, but short enough that a hang fails fast.
    let timeout: Double = 30

    func harnessURL() throws -> URL {
        let name = "MPITestHarness"
        var directories = [URL(fileURLWithPath: ProcessInfo.processInfo.arguments[0]).deletingLastPathComponent(),
                           Bundle.main.bundleURL, Bundle.main.bundleURL.deletingLastPathComponent()]
        for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
            directories.append(bundle.bundleURL.deletingLastPathComponent())
        }
        for dir in directories {
            let candidate = dir.appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        XCTFail("\(name) not found next to the test bundle in \(directories.map(\.path)); build it with `swift build`")
        throw XCTSkip("no harness")
    }

    func mpirunURL() throws -> URL {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let candidate = URL(fileURLWithPath: String(dir)).appendingPathComponent("mpirun")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        throw XCTSkip("mpirun is not installed (apt install openmpi-bin)")
    }

    /// Runs `executable arguments`, killing it after `timeout` seconds.
    func run(_ executable: URL, _ arguments: [String], environment extra: [String: String] = [:]) throws -> Outcome {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        // Tests run as root in containers; Open MPI refuses that without both variables.
        environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        for launcherVariable in ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"] { environment[launcherVariable] = nil }
        environment.merge(extra) { $1 }
        process.environment = environment
        // Files, not pipes: a chatty child can never block on a full pipe while we wait.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mpi-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let outURL = dir.appendingPathComponent("stdout"), errURL = dir.appendingPathComponent("stderr")
        FileManager.default.createFile(atPath: outURL.path, contents: nil)
        FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let out = try FileHandle(forWritingTo: outURL), err = try FileHandle(forWritingTo: errURL)
        process.standardOutput = out
        process.standardError = err
        let finished = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in finished.signal() }
        let start = Date()
        try process.run()
        if finished.wait(timeout: .now() + timeout) == .timedOut {
            process.terminate()  // mpirun forwards SIGTERM to its ranks.
            _ = finished.wait(timeout: .now() + 5)
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            XCTFail("\(executable.lastPathComponent) \(arguments.joined(separator: " ")) did not finish in \(timeout) s")
        }
        try out.close()
        try err.close()
        return Outcome(status: process.terminationStatus,
                       stdout: String(decoding: try Data(contentsOf: outURL), as: UTF8.self),
                       stderr: String(decoding: try Data(contentsOf: errURL), as: UTF8.self),
                       seconds: Date().timeIntervalSince(start))
    }

    func mpirun(_ scenario: String, ranks: Int = 2) throws -> Outcome {
        try run(try mpirunURL(), ["-np", "\(ranks)", "--oversubscribe", "--bind-to", "none", "--allow-run-as-root",
                                  try harnessURL().path, scenario])
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
