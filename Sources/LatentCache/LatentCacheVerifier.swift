import Checkpoint
import Foundation

/// `ldm cache verify` and `ldm cache info`: whole-cache checks and a summary.
public enum LatentCacheVerifier {
    /// One thing wrong with a cache, naming the shard (or "manifest.json").
    public struct Problem: CustomStringConvertible, Equatable {
        public var file: String
        public var message: String
        public var description: String { "\(file): \(message)" }
    }

    public struct Report {
        public var manifest: LatentCacheManifest?
        public var problems: [Problem] = []
        public var shardsChecked = 0
        public var samplesChecked = 0
        public var isValid: Bool { manifest != nil && problems.isEmpty }
    }

    /// Re-hashes, decompresses and decodes every shard, and checks sample counts and tiling
    /// against the manifest. Problems are collected (not thrown) so every bad shard is named.
    public static func verify(directory: URL) -> Report {
        var report = Report()
        let manifest: LatentCacheManifest
        do { manifest = try LatentCacheManifest.read(from: directory) } catch {
            report.problems.append(Problem(file: LatentCacheManifest.fileName, message: "\(error)"))
            return report
        }
        report.manifest = manifest
        for split in manifest.splits {
            let shards = manifest.shards(of: split.name).sorted { $0.firstSample < $1.firstSample }
            var next = 0
            for entry in shards {
                if entry.firstSample != next {
                    report.problems.append(Problem(file: entry.file, message: "starts at sample \(entry.firstSample), expected \(next) (a gap or overlap in the \(split.name) split)"))
                }
                next = entry.firstSample + entry.sampleCount
                do {
                    let shard = try LatentCacheReader.readShard(entry, in: directory, manifest: manifest)
                    report.shardsChecked += 1
                    report.samplesChecked += shard.sampleCount
                } catch {
                    report.problems.append(Problem(file: entry.file, message: "\(error)"))
                }
            }
            let total = shards.reduce(0) { $0 + $1.sampleCount }
            if total != split.sampleCount {
                report.problems.append(Problem(file: LatentCacheManifest.fileName,
                                               message: "the \(split.name) split's shards hold \(total) samples, the split has \(split.sampleCount)"))
            }
        }
        for entry in manifest.shards where manifest.split(named: entry.split) == nil {
            report.problems.append(Problem(file: entry.file, message: "belongs to split '\(entry.split)', which the manifest does not list"))
        }
        return report
    }

    /// What `ldm cache info` prints.
    public static func summary(of manifest: LatentCacheManifest, directory: URL, checksums: String) -> String {
        let totalBytes = manifest.shards.reduce(0) { $0 + $1.bytes }
        let samples = manifest.shards.reduce(0) { $0 + $1.sampleCount }
        let raw = samples * manifest.latentSize * manifest.stored.fieldCount * 4
        var lines = ["cache \(directory.path)",
                     "format version \(manifest.formatVersion)"]
        for split in manifest.splits {
            let shards = manifest.shards(of: split.name)
            lines.append("split \(split.name): \(split.sampleCount) samples in \(shards.count) shards "
                + "(\(shards.reduce(0) { $0 + $1.bytes }) bytes), dataset \(split.dataset)")
        }
        lines += [
            "shards: \(manifest.shards.count), total \(totalBytes) bytes",
            "latent shape \(manifest.latentShape), stored \(manifest.stored.rawValue), dtype \(manifest.dtype.rawValue), "
                + "\(manifest.shuffle)-shuffle + \(manifest.compression) level \(manifest.zstdLevel)",
            String(format: "compression ratio vs fp32 raw latents: %.2fx (%d raw bytes)", totalBytes > 0 ? Double(raw) / Double(totalBytes) : 0, raw),
            "autoencoder fingerprint \(manifest.autoencoder.fingerprint) (\(manifest.autoencoder.regularizer), \(manifest.autoencoder.path))",
            "preprocessing: resolution \(manifest.preprocessing.resolution), fit \(manifest.preprocessing.fit), channels \(manifest.preprocessing.channels)",
            "scale factor: \(manifest.scaleFactor.map { "\($0)" } ?? "not computed yet")",
            "checksums: \(checksums)",
        ]
        return lines.joined(separator: "\n")
    }

    /// Cheap checksum status for `info`: every shard present with the manifest's size.
    public static func quickCheck(_ manifest: LatentCacheManifest, directory: URL) -> [Problem] {
        manifest.shards.compactMap { entry in
            let path = directory.appendingPathComponent(entry.file).path
            guard let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int else {
                return Problem(file: entry.file, message: "missing")
            }
            return size == entry.bytes ? nil : Problem(file: entry.file, message: "\(size) bytes, the manifest says \(entry.bytes)")
        }
    }
}
