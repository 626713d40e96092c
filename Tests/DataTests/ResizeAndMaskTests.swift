import Foundation
import Tensor
import XCTest
@testable import Data

/// The bicubic resize against PIL, and the inpainting masks: seeded, of sensible size, and
/// read from files and carried to the latent grid as documented.
final class ResizeAndMaskTests: XCTestCase {
    struct Fixture: Decodable {
        struct Picture: Decodable { let width: Int; let height: Int; let pixels: [Int] }
        let source: Picture
        let bicubic: [Picture]
    }

    func testBicubicMatchesPILWithinOneLevel() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/pil_bicubic.json")
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
        let source = Image8(width: fixture.source.width, height: fixture.source.height, channels: 1,
                            pixels: fixture.source.pixels.map { UInt8($0) })
        for expected in fixture.bicubic {
            let ours = source.resized(width: expected.width, height: expected.height, filter: .bicubic)
            XCTAssertEqual(ours.pixels.count, expected.pixels.count)
            // PIL rounds through fixed-point weights: a level apart at most.
            let worst = zip(ours.pixels, expected.pixels).map { abs(Int($0) - $1) }.max() ?? Int.max
            XCTAssertLessThanOrEqual(worst, 1, "\(expected.width)×\(expected.height)")
        }
        // And bicubic is not bilinear (the fixture can tell them apart).
        let big = fixture.bicubic[2]
        let bilinear = source.resized(width: big.width, height: big.height)
        XCTAssertGreaterThan(zip(bilinear.pixels, big.pixels).map { abs(Int($0) - $1) }.max()!, 1)
    }

    func testRandomMasksAreSeededAndCoverPartOfTheImage() {
        var coverages: [Double] = []
        for seed in 0..<200 as Range<UInt64> {
            var a = RandomGenerator(seed: seed), b = RandomGenerator(seed: seed)
            let m = InpaintingMask.random(width: 32, height: 32, boxFraction: 0.5, generator: &a)
            XCTAssertEqual(m, InpaintingMask.random(width: 32, height: 32, boxFraction: 0.5, generator: &b))
            XCTAssertTrue(m.values.allSatisfy { $0 == 0 || $0 == 1 })
            coverages.append(m.coverage)
        }
        XCTAssertGreaterThan(coverages.min()!, 0, "every mask fills something")
        XCTAssertLessThan(coverages.max()!, 1, "no mask fills everything")
        let mean = coverages.reduce(0, +) / Double(coverages.count)
        XCTAssertTrue((0.1...0.6).contains(mean), "mean coverage \(mean)")
        XCTAssertGreaterThan(Set(coverages).count, 50, "masks differ from seed to seed")
    }

    func testBoxMasksAreOneRectangle() {
        for seed in 0..<50 as Range<UInt64> {
            var g = RandomGenerator(seed: seed)
            let m = InpaintingMask.random(width: 16, height: 12, boxFraction: 1, generator: &g)
            let filled = (0..<m.values.count).filter { m.values[$0] > 0 }
            let xs = filled.map { $0 % 16 }, ys = filled.map { $0 / 16 }
            let area = (xs.max()! - xs.min()! + 1) * (ys.max()! - ys.min()! + 1)
            XCTAssertEqual(area, filled.count, "seed \(seed): a box fills its bounding rectangle")
            XCTAssertGreaterThanOrEqual(xs.max()! - xs.min()! + 1, 4)
        }
    }

    func testMaskFromAnImageAndAtTheLatentGrid() {
        var pixels = [UInt8](repeating: 0, count: 8 * 8)
        pixels[0] = 255          // cell (0, 0)
        pixels[8 * 5 + 6] = 128  // cell (1, 1): mid-grey is filled
        pixels[8 * 5 + 1] = 127  // below mid-grey: kept
        let m = InpaintingMask(image: Image8(width: 8, height: 8, channels: 1, pixels: pixels))
        XCTAssertEqual(m.coverage, 2.0 / 64)
        XCTAssertEqual(m.downsampled(width: 2, height: 2), [1, 0, 0, 1])
        XCTAssertEqual(m.downsampled(width: 8, height: 8), m.values)
    }
}
