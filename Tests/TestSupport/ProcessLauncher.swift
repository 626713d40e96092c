import Foundation
import XCTest

/// What a launched command did.
public struct ProcessOutcome {
    public var status: Int32
    public var killedBySignal: Bool
    public var stdout: String
    public var stderr: String
    public var seconds: Double
    /// stdout and stderr together.
    public var all: String { stdout + "\n" + stderr }
}

/// A tool the tests need is missing: a failure, not a skip, because setup installs it.
public struct MissingTool: Error, CustomStringConvertible {
    public let description: String
}

/// Runs this package's executables (alone or under `mpirun`) from tests, with a timeout so a
/// hang fails fast, and with output in files so a chatty child never blocks on a full pipe.
public enum Launcher {
    /// An executable product built by `swift test` next to the test bundle (ldm, MPITestHarness).
    public static func builtProduct(_ name: String) throws -> URL {
        var directories = [URL(fileURLWithPath: ProcessInfo.processInfo.arguments[0]).deletingLastPathComponent(),
                           Bundle.main.bundleURL, Bundle.main.bundleURL.deletingLastPathComponent()]
        for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
            directories.append(bundle.bundleURL.deletingLastPathComponent())
        }
        for dir in directories {
            let candidate = dir.appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        throw MissingTool(description: "\(name) not found next to the test bundle in \(directories.map(\.path)); "
            + "`swift test` builds it")
    }

    public static func mpirun() throws -> URL {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let candidate = URL(fileURLWithPath: String(dir)).appendingPathComponent("mpirun")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        throw MissingTool(description: "mpirun is not installed (Launch/setup.sh installs openmpi-bin)")
    }

    /// `mpirun -np ranks` options for tests: more ranks than cores allowed, no binding, root ok.
    public static func mpirunArguments(ranks: Int) -> [String] {
        ["-np", "\(ranks)", "--oversubscribe", "--bind-to", "none", "--allow-run-as-root"]
    }

    /// The built `ldm` with `arguments`, under `mpirun -np ranks` when ranks > 1, one thread
    /// per rank.
    public static func ldm(_ arguments: [String], ranks: Int = 1, environment extra: [String: String] = [:],
                           timeout: Double = 60, whileRunning: ((Process) -> Void)? = nil) throws -> ProcessOutcome {
        let ldm = try builtProduct("ldm")
        let threads = ["LDM_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"].merging(extra) { $1 }
        if ranks > 1 {
            return try run(try mpirun(), mpirunArguments(ranks: ranks) + [ldm.path] + arguments,
                           environment: threads, timeout: timeout, whileRunning: whileRunning)
        }
        return try run(ldm, arguments, environment: threads, timeout: timeout, whileRunning: whileRunning)
    }

    /// Runs `executable arguments`; after `timeout` seconds it is terminated (mpirun forwards
    /// that to its ranks), then killed, and the test fails.
    public static func run(_ executable: URL, _ arguments: [String], environment extra: [String: String] = [:],
                           timeout: Double = 60, whileRunning: ((Process) -> Void)? = nil,
                           file: StaticString = #filePath, line: UInt = #line) throws -> ProcessOutcome {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        // Tests run as root in containers; Open MPI refuses that without both variables.
        environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        // A test launched under mpirun must not make its children think they are ranks.
        for variable in ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"] { environment[variable] = nil }
        environment.merge(extra) { $1 }
        process.environment = environment
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("launch-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let outURL = dir.appendingPathComponent("stdout"), errURL = dir.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let out = try FileHandle(forWritingTo: outURL), err = try FileHandle(forWritingTo: errURL)
        process.standardOutput = out
        process.standardError = err
        let finished = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in finished.signal() }
        let start = Date()
        try process.run()
        whileRunning?(process)
        if finished.wait(timeout: .now() + timeout) == .timedOut {
            process.terminate()
            if finished.wait(timeout: .now() + 5) == .timedOut {
                kill(process.processIdentifier, SIGKILL)
                finished.wait()
            }
            XCTFail("\(executable.lastPathComponent) \(arguments.joined(separator: " ")) did not finish in \(timeout) s",
                    file: file, line: line)
        }
        try out.close()
        try err.close()
        return ProcessOutcome(status: process.terminationStatus, killedBySignal: process.terminationReason == .uncaughtSignal,
                              stdout: (try? String(contentsOf: outURL, encoding: .utf8)) ?? "",
                              stderr: (try? String(contentsOf: errURL, encoding: .utf8)) ?? "",
                              seconds: Date().timeIntervalSince(start))
    }
}
