import Foundation
import XCTest
@testable import Data

/// Sizes read from a file are checked against what the file holds before anything is sized by
/// them; each case is an input that crashed or over-allocated before the check.
final class ReaderBoundsTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("reader-bounds-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func assertMalformed(_ url: URL, _ fragment: String, _ body: () throws -> Void, line: UInt = #line) {
        XCTAssertThrowsError(try body(), line: line) { error in
            XCTAssertTrue("\(error)".contains(url.lastPathComponent) && "\(error)".contains(fragment), "\(error)", line: line)
        }
    }

    /// IDX header bytes: magic for unsigned bytes, then big-endian dimensions.
    func idxHeader(_ dims: [UInt32]) -> [UInt8] {
        [0, 0, 0x08, UInt8(dims.count)] + dims.flatMap { d in (0..<4).map { UInt8(truncatingIfNeeded: d >> (24 - 8 * $0)) } }
    }

    func testIDXDimensionsWhoseProductOverflowsAreRefused() throws {
        let url = dir.appendingPathComponent("overflow-idx3-ubyte")
        try Data(idxHeader([0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF])).write(to: url)
        assertMalformed(url, "too large") { _ = try IDXFile(contentsOf: url) }
    }

    func testIDXHugeDimensionsOverATinyFileAreRefusedWithoutAllocatingThem() throws {
        // 2^36 bytes announced, 10 present: the reader must not size a buffer by the header.
        let url = dir.appendingPathComponent("huge-idx3-ubyte")
        try Data(idxHeader([16, 4096, 4096, 256]) + [UInt8](repeating: 7, count: 10)).write(to: url)
        assertMalformed(url, "need 68719476736 bytes of data, file has 10") { _ = try IDXFile(contentsOf: url) }
    }

    func testIDXTrailingDataIsRefusedAndExactFileReads() throws {
        let exact = dir.appendingPathComponent("exact-idx1-ubyte")
        try Data(idxHeader([3]) + [1, 2, 3]).write(to: exact)
        let file = try IDXFile(contentsOf: exact)
        XCTAssertEqual(file.dimensions, [3])
        XCTAssertEqual(file.bytes, [1, 2, 3])
        let long = dir.appendingPathComponent("long-idx1-ubyte")
        try Data(idxHeader([3]) + [1, 2, 3, 4]).write(to: long)
        assertMalformed(long, "need 3 bytes of data, file has 4") { _ = try IDXFile(contentsOf: long) }
    }

    /// A gzip stream (gzip -9) of an IDX header announcing 784 bytes followed by 1 MiB of
    /// zeros (made with Python's gzip.compress, level 9, mtime 0).
    func testGzipIDXInflatingPastItsDimensionsIsRefused() throws {
        let url = dir.appendingPathComponent("bomb-idx3-ubyte.gz")
        try Data(base64Encoded: Self.gzipBomb, options: .ignoreUnknownCharacters)!.write(to: url)
        assertMalformed(url, "need 784 bytes of data, file has 1049360") { _ = try IDXFile(contentsOf: url) }
    }

    /// A real PNG whose header is patched to 1,000,000 × 1,000,000 pixels (the largest libpng
    /// accepts): 3 TB of pixels from a 70-byte file is refused before it is allocated.
    func testPNGWhoseHeaderClaimsMorePixelsThanTheFileCanHoldIsRefused() throws {
        let url = dir.appendingPathComponent("huge.png")
        try PNG.write(Image8(width: 2, height: 2, channels: 3, pixels: [UInt8](repeating: 9, count: 12)), to: url)
        var bytes = [UInt8](try Data(contentsOf: url))
        // Signature (8), IHDR length (4) and type (4), then width and height, then the CRC.
        XCTAssertEqual(Array(bytes[12..<16]), Array("IHDR".utf8))
        for (offset, value) in [(16, UInt32(1_000_000)), (20, UInt32(1_000_000))] {
            for k in 0..<4 { bytes[offset + k] = UInt8(truncatingIfNeeded: value >> (24 - 8 * k)) }
        }
        let crc = Self.crc32(bytes[12..<29])
        for k in 0..<4 { bytes[29 + k] = UInt8(truncatingIfNeeded: crc >> (24 - 8 * k)) }
        try Data(bytes).write(to: url)
        assertMalformed(url, "1000000×1000000 pixels") { _ = try PNG.read(url) }
    }

    /// CRC-32 (ISO-HDLC), as PNG chunks carry it.
    static func crc32<S: Sequence>(_ bytes: S) -> UInt32 where S.Element == UInt8 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }

    static let gzipBomb = """
        H4sIAAAAAAACA+3DMQ0AIADAsBEeROBfJxxI4GyT1prVuPcLAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
        AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
        AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
        AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
        AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
        AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
        AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
        AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
        AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
        AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
        AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
        AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
        AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
        AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
        AAB8cgDnLyqzIAMQAA==
        """
}

/// Two copies of Fashion-MNIST that differ in one pixel have different content digests (what
/// ranks compare before training); equal copies have equal ones.
final class DatasetContentDigestTests: XCTestCase {
    func testFashionMNISTDigestSeesOnePixel() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("digest-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        func copy(_ name: String, pixel: UInt8) throws -> URL {
            let directory = root.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            var images: [UInt8] = [0, 0, 0x08, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28] + [UInt8](repeating: 0, count: 2 * 784)
            images[16 + 100] = pixel
            try Data(images).write(to: directory.appendingPathComponent("train-images-idx3-ubyte"))
            try Data([0, 0, 0x08, 1, 0, 0, 0, 2, 3, 7]).write(to: directory.appendingPathComponent("train-labels-idx1-ubyte"))
            return directory
        }
        let a = try FashionMNIST(directory: try copy("a", pixel: 9), split: .train)
        let b = try FashionMNIST(directory: try copy("b", pixel: 9), split: .train)
        let c = try FashionMNIST(directory: try copy("c", pixel: 10), split: .train)
        XCTAssertEqual(a.identity, c.identity, "the identity alone cannot tell these copies apart")
        XCTAssertEqual(a.contentDigest(), b.contentDigest())
        XCTAssertNotEqual(a.contentDigest(), c.contentDigest())
    }
}
