import Foundation
import XCTest
@testable import Data

/// An image folder's captions: .txt beside each image (first line or a named key), JSONL and
/// CSV captions files, and images without one named.
final class ImageCaptionsTests: XCTestCase {
    var root: URL!

    override func setUpWithError() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("captions-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("sub"), withIntermediateDirectories: true)
        for name in ["a.png", "b.png", "sub/c.png"] {
            try PNG.write(Image8(width: 4, height: 4, channels: 1, pixels: [UInt8](repeating: 9, count: 16)), to: root.appendingPathComponent(name))
        }
    }
    override func tearDown() { try? FileManager.default.removeItem(at: root) }

    func write(_ text: String, _ name: String) throws { try Data(text.utf8).write(to: root.appendingPathComponent(name)) }

    func testSidecarFirstLineOrKey() throws {
        try write("  a red dress \nsecond line\n", "a.txt")
        try write("tags: x, y\ncaption: a blue coat\n", "b.txt")
        try write("a bag", "sub/c.txt")
        let folder = try ImageFolder(root: root, channels: 1, resolution: 4, captions: CaptionOptions())
        XCTAssertTrue(folder.hasCaptions)
        XCTAssertEqual((0..<3).map(folder.caption(at:)), ["a red dress", "tags: x, y", "a bag"])
        let keyed = try ImageFolder(root: root, channels: 1, resolution: 4, captions: CaptionOptions(key: "caption", allowMissing: true))
        XCTAssertEqual((0..<3).map(keyed.caption(at:)), [nil, "a blue coat", nil])
        let plain = try ImageFolder(root: root, channels: 1, resolution: 4)
        XCTAssertFalse(plain.hasCaptions)
        XCTAssertNotEqual(plain.identity, folder.identity, "captions are part of the data's identity")
    }

    func testMissingCaptionsAreNamed() throws {
        try write("a red dress", "a.txt")
        XCTAssertThrowsError(try ImageFolder(root: root, channels: 1, resolution: 4, captions: CaptionOptions())) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("2 of 3 images have no caption") && message.contains("b.png")
                          && message.contains("sub/c.png") && message.contains("allow_missing"), message)
        }
        let lenient = try ImageFolder(root: root, channels: 1, resolution: 4, captions: CaptionOptions(allowMissing: true))
        XCTAssertEqual(lenient.caption(at: 0), "a red dress")
        XCTAssertNil(lenient.caption(at: 1))
    }

    func testCaptionsFiles() throws {
        try write("{\"path\": \"a.png\", \"caption\": \"a red dress\"}\n\n{\"path\": \"b.png\", \"caption\": \"ünïcode\"}\n"
                  + "{\"path\": \"sub/c.png\", \"caption\": \"a bag\"}\n", "captions.jsonl")
        let jsonl = try ImageFolder(root: root, channels: 1, resolution: 4, captions: CaptionOptions(file: "captions.jsonl"))
        XCTAssertEqual((0..<3).map(jsonl.caption(at:)), ["a red dress", "ünïcode", "a bag"])
        try write("path,caption\na.png,\"a dress, red\"\nb.png,\"say \"\"hi\"\"\"\r\nsub/c.png,a bag\n", "captions.csv")
        let csv = try ImageFolder(root: root, channels: 1, resolution: 4, captions: CaptionOptions(file: "captions.csv"))
        XCTAssertEqual((0..<3).map(csv.caption(at:)), ["a dress, red", "say \"hi\"", "a bag"])
        try write("path,caption\na.png,\"open quote\n", "bad.csv")
        XCTAssertThrowsError(try ImageFolder(root: root, channels: 1, resolution: 4, captions: CaptionOptions(file: "bad.csv"))) { error in
            XCTAssertTrue("\(error)".contains("bad.csv") && "\(error)".contains("line 2"), "\(error)")
        }
        try write("{\"path\": \"a.png\"}\n", "bad.jsonl")
        XCTAssertThrowsError(try ImageFolder(root: root, channels: 1, resolution: 4, captions: CaptionOptions(file: "bad.jsonl"))) { error in
            XCTAssertTrue("\(error)".contains("bad.jsonl") && "\(error)".contains("line 1"), "\(error)")
        }
        XCTAssertThrowsError(try ImageFolder(root: root, channels: 1, resolution: 4, captions: CaptionOptions(file: "absent.jsonl"))) { error in
            XCTAssertTrue("\(error)".contains("absent.jsonl"), "\(error)")
        }
    }
}
