import Foundation
import LatentCache
import TestSupport
import XCTest

/// The built `ldm` binary: one process vs `mpirun -np 2`, interrupted runs, and `ldm cache`.
/// `swift test` builds `ldm` into the same directory as the test bundle.
final class CommandLineTests: XCTestCase {
    func binary(_ name: String) throws -> URL { try Launcher.builtProduct(name) }

    func mpirun() throws -> URL { try Launcher.mpirun() }

    func run(_ executable: URL, _ arguments: [String], environment extra: [String: String] = [:]) throws -> ProcessOutcome {
        try Launcher.run(executable, arguments, environment: extra, timeout: 120)
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
        XCTAssertEqual(one.status, 0, one.all)
        XCTAssertTrue(one.all.contains("11 shards written"), one.all)   // 8 train + 3 test
        let two = try run(mpirun, ["-np", "2", "--oversubscribe", "--bind-to", "none", ldm.path] + precomputeArguments(fixtures, out: double))
        XCTAssertEqual(two.status, 0, two.all)
        XCTAssertTrue(two.all.contains("on 2 rank(s)"), two.all)
        let a = try CacheFixtures.files(in: single), b = try CacheFixtures.files(in: double)
        XCTAssertEqual(a.keys.sorted(), b.keys.sorted())
        XCTAssertEqual(a.count, 23)   // 11 shards, 11 sidecars, the manifest
        for (name, bytes) in a { XCTAssertEqual(bytes, b[name], "\(name) differs between 1 and 2 ranks") }

        let verify = try run(ldm, ["cache", "verify", double.path])
        XCTAssertEqual(verify.status, 0, verify.all)
        let info = try run(ldm, ["cache", "info", double.path])
        XCTAssertEqual(info.status, 0, info.all)
        for fragment in ["split train: 22 samples in 8 shards", "split test: 9 samples in 3 shards", "latent shape [3, 8, 8]",
                         "dtype fp16", "compression ratio vs fp32 raw latents", "autoencoder fingerprint", "all shards present"] {
            XCTAssertTrue(info.all.contains(fragment), "info lacks «\(fragment)»:\n\(info.all)")
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
        XCTAssertTrue(killed.all.contains("stopped after 2 shard"), killed.all)
        let resumed = try run(ldm, precomputeArguments(fixtures, out: dir))
        XCTAssertEqual(resumed.status, 0, resumed.all)
        // The first rank to stop aborts the job, so the other may have finished 1 or 2 shards.
        let summary = resumed.all.split(separator: "\n").first { $0.contains("shards written") } ?? ""
        let counts = summary.split(separator: " ").compactMap { Int($0) }
        XCTAssertTrue(counts.count >= 2 && counts[0] + counts[1] == 11 && (2...4).contains(counts[1]), resumed.all)
        XCTAssertEqual(try CacheFixtures.files(in: dir), try CacheFixtures.files(in: single))

        // Two kinds of damage at once: both shards are named, and the exit status is non-zero.
        try FileManager.default.removeItem(at: dir.appendingPathComponent("test-000001.shard"))
        let url = dir.appendingPathComponent("train-000005.shard")
        var bytes = try Data(contentsOf: url)
        bytes[70] ^= 0x80
        try bytes.write(to: url)
        let verify = try run(ldm, ["cache", "verify", dir.path])
        XCTAssertNotEqual(verify.status, 0)
        XCTAssertTrue(verify.all.contains("test-000001.shard: shard test-000001.shard is missing"), verify.all)
        XCTAssertTrue(verify.all.contains("train-000005.shard: shard train-000005.shard is corrupt"), verify.all)
        XCTAssertTrue(verify.all.contains("2 problem(s)"), verify.all)
    }
}
