import Foundation
import LatentCache
import XCTest

/// The built `ldm` binary: one process vs `mpirun -np 2`, interrupted runs, and `ldm cache`.
/// `swift test` builds `ldm` into the same directory as the test bundle.
final class CommandLineTests: XCTestCase {
    struct Outcome {
        var status: Int32
        var output: String
    }

    func binary(_ name: String) throws -> URL {
        var directories: [URL] = []
        for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
            directories.append(bundle.bundleURL.deletingLastPathComponent())
        }
        directories.append(URL(fileURLWithPath: ProcessInfo.processInfo.arguments[0]).deletingLastPathComponent())
        for dir in directories where FileManager.default.isExecutableFile(atPath: dir.appendingPathComponent(name).path) {
            return dir.appendingPathComponent(name)
        }
        throw XCTSkip("\(name) not found next to the test bundle (\(directories.map(\.path)))")
    }

    func mpirun() throws -> URL {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            let url = URL(fileURLWithPath: String(dir)).appendingPathComponent("mpirun")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        throw XCTSkip("mpirun is not installed")
    }

    func run(_ executable: URL, _ arguments: [String], environment extra: [String: String] = [:]) throws -> Outcome {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        for v in ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"] { environment[v] = nil }
        environment.merge(extra) { $1 }
        process.environment = environment
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("ldm-cli-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: log) }
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        let done = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in done.signal() }
        try process.run()
        if done.wait(timeout: .now() + 120) == .timedOut {
            process.terminate()
            _ = done.wait(timeout: .now() + 5)
            XCTFail("\(executable.lastPathComponent) \(arguments) timed out")
        }
        try handle.close()
        return Outcome(status: process.terminationStatus, output: String(decoding: try Data(contentsOf: log), as: UTF8.self))
    }

    func precomputeArguments(_ fixtures: CacheFixtures, out: URL) -> [String] {
        ["precompute-latents", "--autoencoder", fixtures.autoencoderURL.path, "--images", fixtures.trainImages.path,
         "--validation-images", fixtures.testImages.path, "--channels", "1", "--resolution", "16", "--fit", "pad",
         "--out", out.path, "--shard-size", "3", "--batch-size", "2"]
    }

    func testTwoRanksWriteTheSameBytesAsOneAndTheCacheVerifies() throws {
        let ldm = try binary("ldm"), mpirun = try mpirun()
        let fixtures = try CacheFixtures()
        let single = fixtures.directory("single"), double = fixtures.directory("double")
        let one = try run(ldm, precomputeArguments(fixtures, out: single))
        XCTAssertEqual(one.status, 0, one.output)
        XCTAssertTrue(one.output.contains("11 shards written"), one.output)   // 8 train + 3 test
        let two = try run(mpirun, ["-np", "2", "--oversubscribe", "--bind-to", "none", ldm.path] + precomputeArguments(fixtures, out: double))
        XCTAssertEqual(two.status, 0, two.output)
        XCTAssertTrue(two.output.contains("on 2 rank(s)"), two.output)
        let a = try CacheFixtures.files(in: single), b = try CacheFixtures.files(in: double)
        XCTAssertEqual(a.keys.sorted(), b.keys.sorted())
        XCTAssertEqual(a.count, 23)   // 11 shards, 11 sidecars, the manifest
        for (name, bytes) in a { XCTAssertEqual(bytes, b[name], "\(name) differs between 1 and 2 ranks") }

        let verify = try run(ldm, ["cache", "verify", double.path])
        XCTAssertEqual(verify.status, 0, verify.output)
        let info = try run(ldm, ["cache", "info", double.path])
        XCTAssertEqual(info.status, 0, info.output)
        for fragment in ["split train: 22 samples in 8 shards", "split test: 9 samples in 3 shards", "latent shape [3, 8, 8]",
                         "dtype fp16", "compression ratio vs fp32 raw latents", "autoencoder fingerprint", "all shards present"] {
            XCTAssertTrue(info.output.contains(fragment), "info lacks «\(fragment)»:\n\(info.output)")
        }
    }

    func testInterruptedTwoRankRunResumesAndVerifyNamesEveryBadShard() throws {
        let ldm = try binary("ldm"), mpirun = try mpirun()
        let fixtures = try CacheFixtures()
        let single = fixtures.directory("single"), dir = fixtures.directory("resumed")
        XCTAssertEqual(try run(ldm, precomputeArguments(fixtures, out: single)).status, 0)
        let killed = try run(mpirun, ["-np", "2", "--oversubscribe", "--bind-to", "none", ldm.path] + precomputeArguments(fixtures, out: dir),
                             environment: ["LDM_PRECOMPUTE_STOP_AFTER_SHARDS": "2"])
        XCTAssertNotEqual(killed.status, 0)
        XCTAssertTrue(killed.output.contains("stopped after 2 shard"), killed.output)
        let resumed = try run(ldm, precomputeArguments(fixtures, out: dir))
        XCTAssertEqual(resumed.status, 0, resumed.output)
        // The first rank to stop aborts the job, so the other may have finished 1 or 2 shards.
        let counts = resumed.output.split(separator: " ").compactMap { Int($0) }
        XCTAssertTrue(counts.count >= 2 && counts[0] + counts[1] == 11 && (2...4).contains(counts[1]), resumed.output)
        XCTAssertEqual(try CacheFixtures.files(in: dir), try CacheFixtures.files(in: single))

        // Two kinds of damage at once: both shards are named, and the exit status is non-zero.
        try FileManager.default.removeItem(at: dir.appendingPathComponent("test-000001.shard"))
        let url = dir.appendingPathComponent("train-000005.shard")
        var bytes = try Data(contentsOf: url)
        bytes[70] ^= 0x80
        try bytes.write(to: url)
        let verify = try run(ldm, ["cache", "verify", dir.path])
        XCTAssertNotEqual(verify.status, 0)
        XCTAssertTrue(verify.output.contains("test-000001.shard: shard test-000001.shard is missing"), verify.output)
        XCTAssertTrue(verify.output.contains("train-000005.shard: shard train-000005.shard is corrupt"), verify.output)
        XCTAssertTrue(verify.output.contains("2 problem(s)"), verify.output)
    }
}
