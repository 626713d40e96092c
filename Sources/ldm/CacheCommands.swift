import ArgumentParser
import Foundation
import LatentCache

/// `ldm cache verify|info DIR`: check or describe a latent cache.
struct CacheCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cache",
        abstract: "Inspect latent caches written by `ldm precompute-latents`.",
        subcommands: [CacheVerifyCommand.self, CacheInfoCommand.self])
}

struct CacheVerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Re-hash, decompress and decode every shard; exit non-zero naming each bad shard.")

    @Argument(help: "Cache directory.")
    var directory: String

    func run() throws {
        let url = URL(fileURLWithPath: directory)
        let report = LatentCacheVerifier.verify(directory: url)
        for problem in report.problems {
            FileHandle.standardError.write(Data("cache verify: \(problem)\n".utf8))
        }
        guard report.isValid else {
            FileHandle.standardError.write(Data("cache verify: \(url.path): \(report.problems.count) problem(s)\n".utf8))
            throw ExitCode(1)
        }
        print("cache verify: \(url.path): OK, \(report.shardsChecked) shards, \(report.samplesChecked) samples")
    }
}

struct CacheInfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Counts per split, shards, bytes, compression ratio, dtype, latent shape, fingerprint.")

    @Argument(help: "Cache directory.")
    var directory: String

    @Flag(name: .long, help: "Re-hash every shard for the checksum status (slower; otherwise sizes only).")
    var verify = false

    func run() throws {
        let url = URL(fileURLWithPath: directory)
        let manifest = try LatentCacheManifest.read(from: url)
        let status: String
        if verify {
            let report = LatentCacheVerifier.verify(directory: url)
            status = report.isValid ? "all \(report.shardsChecked) shards verified (XXH64)"
                : "\(report.problems.count) problem(s): " + report.problems.map(\.description).joined(separator: "; ")
        } else {
            let problems = LatentCacheVerifier.quickCheck(manifest, directory: url)
            status = problems.isEmpty ? "all shards present with the manifest's sizes (not re-hashed; --verify or `ldm cache verify` re-hashes)"
                : "\(problems.count) problem(s): " + problems.map(\.description).joined(separator: "; ")
        }
        print(LatentCacheVerifier.summary(of: manifest, directory: url, checksums: status))
    }
}
