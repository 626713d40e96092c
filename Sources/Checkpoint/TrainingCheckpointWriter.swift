import Distributed
import Foundation
import Tensor

/// Writes one training checkpoint, every rank its own files in parallel, and commits it.
///
/// Protocol (every rank calls `init`, its `write…` calls, then `commit`, collectively):
///  1. rank 0 empties `<run>/checkpoints/step-NNNNNNNN/` (a crashed earlier write of the same
///     step may have left files there, and a committed one its marker, which goes first), and
///     all ranks meet at a barrier;
///  2. each rank writes its files, each atomically (temporary name, fsync, rename, directory
///     fsync), and hashes what it wrote;
///  3. `commit` gathers every rank's file records on rank 0, which (after all ranks have
///     written: the gather is the barrier) writes `manifest.json` last, atomically; a final
///     barrier means that when `commit` returns on any rank, the checkpoint is durable.
/// A kill at any point before the manifest's rename leaves a directory that readers ignore.
public final class TrainingCheckpointWriter {
    public let store: TrainingCheckpointStore
    public let step: Int
    public let directory: URL
    public let communicator: Communicator
    private var records: [TrainingCheckpointManifest.FileRecord] = []

    /// Test hook: a process whose rank 0 reaches the commit of this step kills itself with
    /// SIGKILL after every shard is written and before the manifest is, as a preemption or
    /// crash at the worst moment would.
    public static let crashBeforeCommitVariable = "LDM_TEST_CRASH_BEFORE_COMMIT_STEP"

    public init(store: TrainingCheckpointStore, step: Int, communicator: Communicator) throws {
        self.store = store
        self.step = step
        self.communicator = communicator
        directory = store.directory(step: step)
        if communicator.isRoot {
            try TrainingCheckpointWriter.prepare(directory: directory, root: store.root)
        }
        try communicator.barrier()
    }

    /// Creates the directory, or unpublishes and empties a previous one of the same step.
    static func prepare(directory: URL, root: URL) throws {
        let fm = FileManager.default
        if fm.fileExists(atPath: directory.path) {
            let marker = directory.appendingPathComponent(TrainingCheckpointManifest.fileName)
            if fm.fileExists(atPath: marker.path) {
                try fm.removeItem(at: marker)
                try AtomicFile.syncDirectory(at: directory)
            }
            for name in try fm.contentsOfDirectory(atPath: directory.path) {
                try fm.removeItem(at: directory.appendingPathComponent(name))
            }
        } else {
            try fm.createDirectory(at: directory, withIntermediateDirectories: true)
            try AtomicFile.syncDirectory(at: root)
            try AtomicFile.syncDirectory(at: root.deletingLastPathComponent())
        }
    }

    /// Writes the file `name` through `body`, which must create it at the URL it is given
    /// atomically (e.g. `SafeTensors.write`, `AtomicFile.write`), and records its size and
    /// hash for the manifest.
    public func writeFile(_ name: String, _ body: (URL) throws -> Void) throws {
        precondition(!name.contains("/") && name != TrainingCheckpointManifest.fileName,
                     "checkpoint file name '\(name)' must be a plain name other than the manifest's")
        precondition(!records.contains { $0.name == name }, "checkpoint file '\(name)' written twice")
        let url = directory.appendingPathComponent(name)
        try body(url)
        let (bytes, digest) = try TrainingCheckpointWriter.hashFile(at: url)
        records.append(.init(name: name, bytes: bytes, xxh64: XXH64.hexString(digest), rank: communicator.rank))
    }

    /// Tensors as safetensors (readable by Python's `safetensors`), Float32.
    public func writeTensors(_ name: String, _ tensors: [String: Tensor], metadata: [String: String] = [:]) throws {
        try writeFile(name) { try SafeTensors.write(tensors, metadata: metadata, to: $0) }
    }

    /// A value as pretty, key-sorted JSON.
    public func writeJSON<T: Encodable>(_ name: String, _ value: T) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(value) + Data("\n".utf8)
        try writeFile(name) { try AtomicFile.write(data, to: $0) }
    }

    public func writeData(_ name: String, _ data: Data) throws {
        try writeFile(name) { try AtomicFile.write(data, to: $0) }
    }

    /// Publishes the checkpoint (see the type's comment). Returns the manifest on every rank.
    @discardableResult
    public func commit(metadata: [String: String] = [:]) throws -> TrainingCheckpointManifest {
        let mine = try JSONEncoder().encode(records)
        let gathered = try communicator.allgather(mine)
        var all: [TrainingCheckpointManifest.FileRecord] = []
        for data in gathered { all += try JSONDecoder().decode([TrainingCheckpointManifest.FileRecord].self, from: data) }
        let names = all.map(\.name)
        if Set(names).count != names.count {
            let duplicates = Dictionary(grouping: names, by: { $0 }).filter { $0.value.count > 1 }.keys.sorted()
            throw TrainingCheckpointError(path: directory.path, "several ranks wrote \(duplicates.joined(separator: ", "))")
        }
        let manifest = TrainingCheckpointManifest(step: step, worldSize: communicator.size, files: all, metadata: metadata)
        if communicator.isRoot {
            if let crashStep = ProcessInfo.processInfo.environment[Self.crashBeforeCommitVariable], Int(crashStep) == step {
                FileHandle.standardError.write(Data("test hook: killing rank 0 before committing step \(step)\n".utf8))
                kill(getpid(), SIGKILL)
            }
            try AtomicFile.write(manifest.encoded(), to: directory.appendingPathComponent(TrainingCheckpointManifest.fileName))
        }
        try communicator.barrier()
        return manifest
    }

    /// Size and XXH64 of a file's bytes.
    static func hashFile(at url: URL) throws -> (bytes: Int, digest: UInt64) {
        let file = try MappedFile(path: url.path)
        return (file.count, XXH64.hash(file.bytes))
    }
}
