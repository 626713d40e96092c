import XCTest
@testable import Checkpoint

/// A fresh directory under the system temp dir, removed when the test ends.
func makeScratchDirectory(_ test: XCTestCase, file: StaticString = #filePath, line: UInt = #line) throws -> URL {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("CheckpointTests-\(getpid())-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
    return url
}

final class AtomicFileTests: XCTestCase {
    func directoryListing(_ url: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: url.path).sorted()
    }

    func testWritesContentAndLeavesNoTemporaryFiles() throws {
        let dir = try makeScratchDirectory(self)
        let target = dir.appendingPathComponent("weights.bin")
        let payload = Data((0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        try AtomicFile.write(payload, to: target)
        XCTAssertEqual(try Data(contentsOf: target), payload)
        XCTAssertEqual(try directoryListing(dir), ["weights.bin"])
    }

    func testStreamingWriteConcatenatesChunks() throws {
        let dir = try makeScratchDirectory(self)
        let target = dir.appendingPathComponent("stream.bin")
        let floats: [Float] = [1, -2.5, 3e8]
        let count = try AtomicFile.write(to: target) { writer -> Int in
            try writer.write(Data("head".utf8))
            try floats.withUnsafeBufferPointer { try writer.write(contentsOf: $0) }
            return writer.bytesWritten
        }
        XCTAssertEqual(count, 4 + 12)
        var expected = Data("head".utf8)
        floats.withUnsafeBytes { expected.append(contentsOf: $0) }
        XCTAssertEqual(try Data(contentsOf: target), expected)
        XCTAssertEqual(try directoryListing(dir), ["stream.bin"])
    }

    func testReplacesExistingFile() throws {
        let dir = try makeScratchDirectory(self)
        let target = dir.appendingPathComponent("state.json")
        try Data("old content that is longer".utf8).write(to: target)
        try AtomicFile.write(Data("new".utf8), to: target)
        XCTAssertEqual(String(decoding: try Data(contentsOf: target), as: UTF8.self), "new")
        XCTAssertEqual(try directoryListing(dir), ["state.json"])
    }

    /// A reader that opened the old file keeps seeing the old bytes: the new file is a new inode
    /// swapped in by rename, not the old one rewritten in place.
    func testReplacementIsARenameNotAnInPlaceRewrite() throws {
        let dir = try makeScratchDirectory(self)
        let target = dir.appendingPathComponent("model.safetensors")
        try Data("version one".utf8).write(to: target)
        let handle = try FileHandle(forReadingFrom: target)
        defer { try? handle.close() }
        try AtomicFile.write(Data("version two!".utf8), to: target)
        XCTAssertEqual(String(decoding: handle.readDataToEndOfFile(), as: UTF8.self), "version one")
        XCTAssertEqual(String(decoding: try Data(contentsOf: target), as: UTF8.self), "version two!")
    }

    func testFailingBodyLeavesDestinationUntouchedAndRemovesTemporary() throws {
        struct Interrupted: Error {}
        let dir = try makeScratchDirectory(self)
        let target = dir.appendingPathComponent("ckpt.bin")
        try Data("keep me".utf8).write(to: target)
        XCTAssertThrowsError(try AtomicFile.write(to: target) { writer in
            try writer.write(Data("half written".utf8))
            throw Interrupted()
        }) { XCTAssertTrue($0 is Interrupted, "body's error is rethrown, got \($0)") }
        XCTAssertEqual(String(decoding: try Data(contentsOf: target), as: UTF8.self), "keep me")
        XCTAssertEqual(try directoryListing(dir), ["ckpt.bin"])
    }

    func testMissingDirectoryGivesClearError() throws {
        let dir = try makeScratchDirectory(self)
        let target = dir.appendingPathComponent("no-such-dir").appendingPathComponent("out.bin")
        XCTAssertThrowsError(try AtomicFile.write(Data([1, 2, 3]), to: target)) { error in
            guard let error = error as? FileError else { return XCTFail("unexpected error \(error)") }
            XCTAssertEqual(error.code, ENOENT)
            XCTAssertTrue(error.description.contains("no-such-dir"), error.description)
            XCTAssertTrue(error.description.contains("does not exist"), error.description)
        }
        XCTAssertEqual(try directoryListing(dir), [])
    }

    func testRenameOntoDirectoryFailsAndCleansUp() throws {
        let dir = try makeScratchDirectory(self)
        let target = dir.appendingPathComponent("occupied")
        try FileManager.default.createDirectory(at: target.appendingPathComponent("child"),
                                                withIntermediateDirectories: true)
        XCTAssertThrowsError(try AtomicFile.write(Data([1]), to: target)) { error in
            XCTAssertEqual((error as? FileError)?.operation, "rename", "\(error)")
        }
        XCTAssertEqual(try directoryListing(dir), ["occupied"])
    }

    func testTemporaryNameIsHiddenSiblingWithPidAndRandomSuffix() {
        let url = URL(fileURLWithPath: "/ckpt/step_10/model.safetensors")
        let a = AtomicFile.temporaryURL(for: url), b = AtomicFile.temporaryURL(for: url)
        XCTAssertEqual(a.deletingLastPathComponent().path, "/ckpt/step_10")
        XCTAssertTrue(a.lastPathComponent.hasPrefix(".model.safetensors.tmp-\(getpid())-"), a.lastPathComponent)
        XCTAssertTrue(AtomicFile.isTemporaryName(a.lastPathComponent))
        XCTAssertFalse(AtomicFile.isTemporaryName("model.safetensors"))
        XCTAssertNotEqual(a, b)
    }

    func testSyncDirectory() throws {
        let dir = try makeScratchDirectory(self)
        XCTAssertNoThrow(try AtomicFile.syncDirectory(at: dir))
        XCTAssertThrowsError(try AtomicFile.syncDirectory(at: dir.appendingPathComponent("missing"))) {
            XCTAssertEqual(($0 as? FileError)?.code, ENOENT)
        }
    }
}
