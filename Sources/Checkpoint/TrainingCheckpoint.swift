import Foundation

/// A committed checkpoint directory, opened for resuming.
///
/// Opening reads the manifest and checks that every file it lists is there with its size
/// (cheap, catches a missing or truncated shard up front). Every file is checked against its
/// XXH64 when it is read, so a corrupt byte is refused with the file's name before any of its
/// content is used.
public final class TrainingCheckpoint {
    public let directory: URL
    public let manifest: TrainingCheckpointManifest

    public init(directory: URL) throws {
        self.directory = directory.standardizedFileURL
        let markerURL = self.directory.appendingPathComponent(TrainingCheckpointManifest.fileName)
        guard let data = FileManager.default.contents(atPath: markerURL.path) else {
            throw TrainingCheckpointError(path: self.directory.path, file: TrainingCheckpointManifest.fileName,
                                          "missing or unreadable: not a committed checkpoint")
        }
        do {
            manifest = try JSONDecoder().decode(TrainingCheckpointManifest.self, from: data)
        } catch {
            throw TrainingCheckpointError(path: self.directory.path, file: TrainingCheckpointManifest.fileName,
                                          "not a valid manifest: \(error)")
        }
        guard manifest.format == TrainingCheckpointManifest.currentFormat else {
            throw TrainingCheckpointError(path: self.directory.path, file: TrainingCheckpointManifest.fileName,
                                          "format '\(manifest.format)' is not '\(TrainingCheckpointManifest.currentFormat)'")
        }
        for record in manifest.files {
            let path = self.directory.appendingPathComponent(record.name).path
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
                  let size = (attributes[.size] as? NSNumber)?.intValue else {
                throw TrainingCheckpointError(path: self.directory.path, file: record.name,
                                              "missing (written by rank \(record.rank) of \(manifest.worldSize), "
                                              + "listed in \(TrainingCheckpointManifest.fileName))")
            }
            guard size == record.bytes else {
                throw TrainingCheckpointError(path: self.directory.path, file: record.name,
                                              "has \(size) bytes, the manifest says \(record.bytes): truncated or replaced")
            }
        }
    }

    public var step: Int { manifest.step }
    public var worldSize: Int { manifest.worldSize }
    public var fileNames: [String] { manifest.files.map(\.name) }

    /// The file's bytes, after checking them against the manifest.
    public func data(_ name: String) throws -> Data {
        let file = try verifiedFile(name)
        return Data(file.bytes)
    }

    /// A JSON file decoded as `T`, the error naming the file and the key.
    public func json<T: Decodable>(_ type: T.Type, _ name: String) throws -> T {
        let bytes = try data(name)
        do {
            return try JSONDecoder().decode(T.self, from: bytes)
        } catch let DecodingError.keyNotFound(key, context) {
            throw TrainingCheckpointError(path: directory.path, file: name,
                                          "missing key \((context.codingPath + [key]).map(\.stringValue).joined(separator: "."))")
        } catch {
            throw TrainingCheckpointError(path: directory.path, file: name, "unreadable: \(error)")
        }
    }

    /// A safetensors file, after checking its bytes against the manifest.
    public func tensors(_ name: String) throws -> SafeTensorsFile {
        _ = try verifiedFile(name)
        return try SafeTensors.read(directory.appendingPathComponent(name))
    }

    /// Checks every file's hash (the reads check theirs anyway; this is for `verify` tools).
    public func verifyAll() throws {
        for record in manifest.files { _ = try verifiedFile(record.name) }
    }

    private func verifiedFile(_ name: String) throws -> MappedFile {
        guard let record = manifest.record(named: name) else {
            throw TrainingCheckpointError(path: directory.path, file: name,
                                          "not listed in \(TrainingCheckpointManifest.fileName): a shard is missing "
                                          + "(the checkpoint was written by \(manifest.worldSize) rank(s))")
        }
        let url = directory.appendingPathComponent(name)
        let file: MappedFile
        do {
            file = try MappedFile(path: url.path)
        } catch {
            throw TrainingCheckpointError(path: directory.path, file: name, "unreadable: \(error)")
        }
        let digest = XXH64.hexString(XXH64.hash(file.bytes))
        guard file.count == record.bytes, digest == record.xxh64 else {
            throw TrainingCheckpointError(path: directory.path, file: name,
                                          "checksum mismatch: XXH64 \(digest) over \(file.count) bytes, the manifest says "
                                          + "\(record.xxh64) over \(record.bytes) bytes: the file is corrupt")
        }
        return file
    }
}
