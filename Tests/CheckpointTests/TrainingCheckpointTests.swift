import Distributed
import Foundation
import Tensor
import XCTest
@testable import Checkpoint

final class TrainingCheckpointTests: XCTestCase {
    var run: URL!

    override func setUpWithError() throws {
        run = FileManager.default.temporaryDirectory.appendingPathComponent("ckpt-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: run) }

    @discardableResult
    func write(step: Int, commit: Bool = true) throws -> URL {
        let writer = try TrainingCheckpointWriter(store: TrainingCheckpointStore(runDirectory: run), step: step,
                                                  communicator: SingleProcessCommunicator())
        try writer.writeTensors("weights.safetensors", ["w": Tensor(shape: [2, 3], scalars: (0..<6).map { Float($0) + Float(step) })])
        try writer.writeJSON("state.json", ["step": step])
        if commit { try writer.commit(metadata: ["trainer": "test"]) }
        return writer.directory
    }

    func testCommittedCheckpointRoundTripsAndListsEveryFileWithSizeAndHash() throws {
        let dir = try write(step: 500)
        XCTAssertEqual(dir.lastPathComponent, "step-00000500")
        let checkpoint = try TrainingCheckpoint(directory: dir)
        XCTAssertEqual(checkpoint.step, 500)
        XCTAssertEqual(checkpoint.worldSize, 1)
        XCTAssertEqual(checkpoint.fileNames, ["state.json", "weights.safetensors"])
        let data = try Data(contentsOf: dir.appendingPathComponent("weights.safetensors"))
        let record = try XCTUnwrap(checkpoint.manifest.record(named: "weights.safetensors"))
        XCTAssertEqual(record.bytes, data.count)
        XCTAssertEqual(record.xxh64, XXH64.hexString(data.withUnsafeBytes { XXH64.hash($0) }))
        XCTAssertEqual(try checkpoint.tensors("weights.safetensors").tensor(named: "w").scalars, (500..<506).map(Float.init))
        XCTAssertEqual(try checkpoint.json([String: Int].self, "state.json"), ["step": 500])
        // No temporary files are left behind.
        XCTAssertFalse(try FileManager.default.contentsOfDirectory(atPath: dir.path).contains(where: AtomicFile.isTemporaryName))
    }

    func testUncommittedDirectoryIsIgnoredAndLatestIsTheNewestCommitted() throws {
        let store = TrainingCheckpointStore(runDirectory: run)
        XCTAssertNil(try store.resolve("latest"))
        try write(step: 2)
        try write(step: 10)
        try write(step: 12, commit: false)   // as a kill between the shards and the manifest leaves it
        XCTAssertEqual(store.committed().map(\.step), [2, 10])
        XCTAssertEqual(try store.resolve("latest")?.lastPathComponent, "step-00000010")
        XCTAssertThrowsError(try store.resolve(store.directory(step: 12).path)) { error in
            XCTAssertTrue("\(error)".contains("manifest.json") && "\(error)".contains("never committed"), "\(error)")
        }
        XCTAssertThrowsError(try store.resolve(run.appendingPathComponent("nope").path)) { error in
            XCTAssertTrue("\(error)".contains("no such checkpoint directory"), "\(error)")
        }
        // Rewriting a step replaces the stale files of the interrupted write.
        try write(step: 12)
        XCTAssertEqual(store.committed().map(\.step), [2, 10, 12])
    }

    func testCorruptByteIsRefusedNamingTheFile() throws {
        let dir = try write(step: 3)
        let url = dir.appendingPathComponent("weights.safetensors")
        var bytes = try Data(contentsOf: url)
        bytes[bytes.count - 1] ^= 0x01
        try bytes.write(to: url)
        let checkpoint = try TrainingCheckpoint(directory: dir)   // sizes still match
        XCTAssertThrowsError(try checkpoint.tensors("weights.safetensors")) { error in
            XCTAssertTrue("\(error)".contains("weights.safetensors") && "\(error)".contains("checksum mismatch"), "\(error)")
        }
        XCTAssertThrowsError(try checkpoint.verifyAll())
        XCTAssertNoThrow(try checkpoint.json([String: Int].self, "state.json"))
    }

    func testMissingOrTruncatedShardIsRefusedWhenOpening() throws {
        let dir = try write(step: 4)
        try FileManager.default.removeItem(at: dir.appendingPathComponent("state.json"))
        XCTAssertThrowsError(try TrainingCheckpoint(directory: dir)) { error in
            XCTAssertTrue("\(error)".contains("state.json") && "\(error)".contains("missing"), "\(error)")
        }
        let other = try write(step: 5)
        let handle = try FileHandle(forWritingTo: other.appendingPathComponent("weights.safetensors"))
        try handle.truncate(atOffset: 10)
        try handle.close()
        XCTAssertThrowsError(try TrainingCheckpoint(directory: other)) { error in
            XCTAssertTrue("\(error)".contains("weights.safetensors") && "\(error)".contains("truncated"), "\(error)")
        }
        // A file the manifest does not list (a shard of a rank that never wrote).
        let checkpoint = try TrainingCheckpoint(directory: try write(step: 6))
        XCTAssertThrowsError(try checkpoint.data("optimizer.rank-00001-of-00002.safetensors")) { error in
            XCTAssertTrue("\(error)".contains("not listed in manifest.json"), "\(error)")
        }
    }

    func testRetentionKeepsTheLastNAndEveryKthAndDropsUncommitted() throws {
        let store = TrainingCheckpointStore(runDirectory: run)
        for step in 1...9 { try write(step: step) }
        try write(step: 11, commit: false)
        let removed = try store.prune(keepLast: 2, keepEvery: 4)
        XCTAssertEqual(store.allDirectories().map(\.step), [4, 8, 9])
        XCTAssertEqual(removed.count, 7)
        try store.prune(keepLast: 1, keepEvery: 0)
        XCTAssertEqual(store.allDirectories().map(\.step), [9])
    }

    func testShardAssignmentIsContiguousCoveringAndBalanced() {
        let counts = [100, 5, 5, 300, 20, 20, 1000, 1, 1, 400]
        for parts in 1...5 {
            let ranges = ShardAssignment.contiguous(elementCounts: counts, parts: parts)
            XCTAssertEqual(ranges.count, parts)
            XCTAssertEqual(ranges.flatMap { Array($0) }, Array(counts.indices), "parts \(parts): \(ranges)")
        }
        let two = ShardAssignment.contiguous(elementCounts: [10, 10, 10, 10], parts: 2)
        XCTAssertEqual(two, [0..<2, 2..<4])
        // More ranks than tensors: some write nothing, none writes twice.
        XCTAssertEqual(ShardAssignment.contiguous(elementCounts: [5], parts: 3).map(\.count).reduce(0, +), 1)
    }

    func testDirectoryNamesSortAsSteps() {
        XCTAssertEqual(TrainingCheckpointStore.directoryName(step: 500), "step-00000500")
        XCTAssertEqual(TrainingCheckpointStore.step(ofDirectoryName: "step-00000500"), 500)
        XCTAssertEqual(TrainingCheckpointStore.step(ofDirectoryName: "step-123456789"), 123_456_789)
        XCTAssertNil(TrainingCheckpointStore.step(ofDirectoryName: "step-"))
        XCTAssertNil(TrainingCheckpointStore.step(ofDirectoryName: ".step-00000001.tmp"))
    }
}
