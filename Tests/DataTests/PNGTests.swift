import Foundation
import XCTest
@testable import Data

final class PNGTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("png-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func testRoundTripGreyAndRGB() throws {
        let grey = Image8(width: 5, height: 3, channels: 1, pixels: (0..<15).map { UInt8($0 * 17) })
        let rgb = Image8(width: 2, height: 2, channels: 3, pixels: [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30])
        try PNG.write(grey, to: dir.appendingPathComponent("g.png"))
        try PNG.write(rgb, to: dir.appendingPathComponent("c.png"))
        XCTAssertEqual(try PNG.read(dir.appendingPathComponent("g.png")), grey)
        XCTAssertEqual(try PNG.read(dir.appendingPathComponent("c.png")), rgb)
    }

    func testColourConversion() throws {
        let rgb = Image8(width: 1, height: 1, channels: 3, pixels: [200, 200, 200])
        try PNG.write(rgb, to: dir.appendingPathComponent("c.png"))
        let grey = try PNG.read(dir.appendingPathComponent("c.png"), channels: 1)
        XCTAssertEqual(grey.channels, 1)
        XCTAssertEqual(Int(grey.pixels[0]), 200, accuracy: 1)
        let back = try PNG.read(dir.appendingPathComponent("c.png"), channels: 3)
        XCTAssertEqual(back, rgb)
    }

    func testUnreadableFileNamesThePath() throws {
        let bad = dir.appendingPathComponent("not-a-png.png")
        try Data("hello".utf8).write(to: bad)
        XCTAssertThrowsError(try PNG.read(bad)) { error in
            XCTAssertTrue("\(error)".contains("not-a-png.png"), "\(error)")
        }
        XCTAssertThrowsError(try PNG.read(dir.appendingPathComponent("missing.png"))) { error in
            XCTAssertTrue("\(error)".contains("missing.png"), "\(error)")
        }
    }

    func testResizeKeepsConstantImagesAndAverages() {
        let flat = Image8(width: 7, height: 5, channels: 3, pixels: [UInt8](repeating: 90, count: 105))
        XCTAssertTrue(flat.resized(width: 3, height: 9).pixels.allSatisfy { $0 == 90 })
        // Halving 1-pixel stripes averages them away (no aliasing) away from the borders.
        let stripes = Image8(width: 8, height: 1, channels: 1, pixels: [0, 200, 0, 200, 0, 200, 0, 200])
        let half = stripes.resized(width: 4, height: 1).pixels.map(Int.init)
        XCTAssertEqual(half[1], 100, accuracy: 1)
        XCTAssertEqual(half[2], 100, accuracy: 1)
    }

    func testFitModes() {
        let img = Image8(width: 28, height: 28, channels: 1, pixels: [UInt8](repeating: 255, count: 784))
        let padded = img.fitted(width: 32, height: 32, fit: .pad)
        XCTAssertEqual(padded.width, 32)
        XCTAssertEqual(padded.pixels[0], 0)                  // border is black
        XCTAssertEqual(padded.pixels[2 * 32 + 2], 255)      // image starts at (2, 2)
        XCTAssertEqual(padded.pixels.filter { $0 == 255 }.count, 784)
        let wide = Image8(width: 40, height: 20, channels: 1, pixels: (0..<800).map { UInt8($0 % 40 * 6) })
        let cropped = wide.fitted(width: 16, height: 16, fit: .resizeCrop)
        XCTAssertEqual([cropped.width, cropped.height], [16, 16])
        let stretched = wide.fitted(width: 10, height: 30, fit: .stretch)
        XCTAssertEqual([stretched.width, stretched.height], [10, 30])
    }

    func testGridLayout() throws {
        let t = Tensor(repeating: 1, shape: [3, 1, 4, 4])
        let grid = ImageGrid.make(t, columns: 2, padding: 1)
        XCTAssertEqual([grid.width, grid.height], [2 * 4 + 3, 2 * 4 + 3])
        XCTAssertEqual(grid.pixels.filter { $0 == 255 }.count, 48)
    }
}

import Tensor
