import Foundation
import XCTest
@testable import Data
import Tensor

final class DatasetTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("dataset-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func testFashionMNISTFromTheDebianPackage() throws {
        let test = try FashionMNIST(split: .test, resolution: 32)
        XCTAssertEqual(test.count, 10_000)
        XCTAssertEqual(test.label(at: 0), 9)  // the first t10k item is an ankle boot
        let (images, labels) = try test.batch([0, 1, 2])
        XCTAssertEqual(images.shape, [3, 1, 32, 32])
        XCTAssertEqual(labels.count, 3)
        XCTAssertEqual(images.minValue(), -1)
        XCTAssertLessThanOrEqual(images.maxValue(), 1)
        // The 2-pixel pad is background.
        XCTAssertTrue((0..<32).allSatisfy { images.pointer[$0] == -1 })
        XCTAssertEqual(test.identity, "fashion-mnist/test/10000")
    }

    func testIDXErrorsNameTheFile() throws {
        let bad = dir.appendingPathComponent("bad-images-idx3-ubyte")
        try Data([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2]).write(to: bad)
        XCTAssertThrowsError(try IDXFile(contentsOf: bad)) { XCTAssertTrue("\($0)".contains("bad-images-idx3-ubyte"), "\($0)") }
        let notIDX = dir.appendingPathComponent("x")
        try Data([1, 2, 3, 4, 5]).write(to: notIDX)
        XCTAssertThrowsError(try IDXFile(contentsOf: notIDX)) { XCTAssertTrue("\($0)".contains("magic"), "\($0)") }
        XCTAssertThrowsError(try FashionMNIST(directory: dir, split: .train)) { XCTAssertTrue("\($0)".contains("dataset-fashion-mnist"), "\($0)") }
    }

    func testImageFolderWithClassesAndAnySize() throws {
        for (cls, size) in [("cats", 40), ("dogs", 20)] {
            let sub = dir.appendingPathComponent(cls)
            try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: true)
            for i in 0..<2 {
                let img = Image8(width: size, height: size / 2, channels: 3, pixels: [UInt8](repeating: UInt8(60 * i), count: size * size / 2 * 3))
                try PNG.write(img, to: sub.appendingPathComponent("\(i).png"))
            }
        }
        let folder = try ImageFolder(root: dir, channels: 3, resolution: 16)
        XCTAssertEqual(folder.count, 4)
        XCTAssertEqual(folder.classNames, ["cats", "dogs"])
        XCTAssertEqual((0..<4).map { folder.label(at: $0) }, [0, 0, 1, 1])
        let (images, _) = try folder.batch([0, 3])
        XCTAssertEqual(images.shape, [2, 3, 16, 16])
        let grey = try ImageFolder(root: dir, channels: 1, resolution: 8)
        XCTAssertEqual(try grey.batch([1]).images.shape, [1, 1, 8, 8])
    }

    func testImageFolderReportsUnreadableImagesByName() throws {
        try PNG.write(Image8(width: 2, height: 2, channels: 1, pixels: [0, 1, 2, 3]), to: dir.appendingPathComponent("a.png"))
        try Data("junk".utf8).write(to: dir.appendingPathComponent("b.png"))
        let folder = try ImageFolder(root: dir, channels: 1, resolution: 2)
        XCTAssertThrowsError(try folder.batch([0, 1])) { XCTAssertTrue("\($0)".contains("b.png"), "\($0)") }
        XCTAssertThrowsError(try ImageFolder(root: dir.appendingPathComponent("nope"), channels: 1, resolution: 2)) {
            XCTAssertTrue("\($0)".contains("nope"), "\($0)")
        }
        XCTAssertThrowsError(try ImageFolder(root: dir, channels: 4, resolution: 2)) { XCTAssertTrue("\($0)".contains("channels"), "\($0)") }
    }
}
