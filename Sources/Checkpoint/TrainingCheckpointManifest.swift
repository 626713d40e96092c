import Foundation

/// The commit marker of a training checkpoint directory: every file the ranks wrote, with
/// its size and XXH64, written by rank 0 last. A directory without it was never committed
/// (a crash or a kill during the write) and is ignored by `--resume`.
public struct TrainingCheckpointManifest: Codable, Equatable, Sendable {
    public struct FileRecord: Codable, Equatable, Sendable {
        /// File name inside the checkpoint directory.
        public var name: String
        public var bytes: Int
        /// XXH64 (seed 0) of the whole file, 16 lowercase hex digits.
        public var xxh64: String
        /// The rank that wrote it.
        public var rank: Int

        public init(name: String, bytes: Int, xxh64: String, rank: Int) {
            self.name = name
            self.bytes = bytes
            self.xxh64 = xxh64
            self.rank = rank
        }
    }

    public static let fileName = "manifest.json"
    public static let currentFormat = "ldm-swift training checkpoint v1"

    public var format: String
    public var step: Int
    public var worldSize: Int
    /// Sorted by name.
    public var files: [FileRecord]
    /// Free-form facts for humans and tools (trainer kind, dataset identity, fingerprints).
    public var metadata: [String: String]

    enum CodingKeys: String, CodingKey {
        case format, step, files, metadata
        case worldSize = "world_size"
    }

    public init(step: Int, worldSize: Int, files: [FileRecord], metadata: [String: String]) {
        format = TrainingCheckpointManifest.currentFormat
        self.step = step
        self.worldSize = worldSize
        self.files = files.sorted { $0.name < $1.name }
        self.metadata = metadata
    }

    public func record(named name: String) -> FileRecord? { files.first { $0.name == name } }

    /// Pretty, key-sorted JSON: stable bytes for the same content.
    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self) + Data("\n".utf8)
    }
}
