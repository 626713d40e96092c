import Foundation
import Tensor
import XCTest
@testable import Evaluation

final class ImageMetricTests: XCTestCase {
    /// The Python-recorded pairs: raw uint8 images and their reference scores.
    struct Fixture: Decodable {
        struct Pair: Decodable {
            let name: String
            let shape: [Int]
            let offset: Int
            let ssim: Double
            let psnr: Double
        }
        let pairs: [Pair]
    }

    func loadFixture() throws -> (Fixture, [UInt8]) {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: dir.appendingPathComponent("ssim_pairs.json")))
        let bytes = try [UInt8](Data(contentsOf: dir.appendingPathComponent("ssim_pairs.bin")))
        return (fixture, bytes)
    }

    /// 8-bit pixels as the datasets deliver them: k / 127.5 − 1 in Float32.
    func image(_ bytes: [UInt8], offset: Int, shape: [Int]) -> Tensor {
        let n = shape.reduce(1, *)
        return Tensor(shape: [1] + shape, scalars: bytes[offset..<offset + n].map { Float($0) / 127.5 - 1 })
    }

    func uniformImages(_ shape: [Int], seed: UInt64) -> Tensor {
        var g = RandomGenerator(seed: seed)
        return Tensor.randomUniform(shape, low: -1, high: 1, generator: &g)
    }

    // MARK: PSNR

    func testPSNROfConstantOffsetsIsTheClosedForm() {
        // In [−1, 1] an offset d is d / 2 in [0, 1]: MSE d² / 4, PSNR −10·log10(d² / 4).
        let base = uniformImages([3, 3, 8, 8], seed: 1).clamped(min: -0.5, max: 0.5)
        let offsets: [Float] = [0.2, 0.02, 0.5]
        let shifted = Tensor(uninitialized: base.shape)
        for n in 0..<3 {
            for i in 0..<192 { shifted.pointer[n * 192 + i] = base.pointer[n * 192 + i] + offsets[n] }
        }
        let psnr = PSNR.perImage(shifted, base)
        XCTAssertEqual(psnr[0], 20, accuracy: 1e-4)
        XCTAssertEqual(psnr[1], 40, accuracy: 1e-3)
        XCTAssertEqual(psnr[2], -10 * log10(0.0625), accuracy: 1e-4)
        // Symmetric.
        XCTAssertEqual(PSNR.perImage(base, shifted), psnr)
    }

    func testPSNROffsetInOneChannelAveragesOverChannels() {
        let a = Tensor(zeros: [3, 4, 4])
        let b = Tensor(zeros: [3, 4, 4])
        for i in 0..<16 { b.pointer[i] = 0.2 }  // red only: MSE 0.01 / 3
        XCTAssertEqual(PSNR.perImage(a, b)[0], 10 * log10(300), accuracy: 1e-4)
    }

    func testPSNRIsCappedForIdenticalImagesAndClampsOutOfRangeValues() {
        let a = uniformImages([2, 1, 8, 8], seed: 2)
        XCTAssertEqual(PSNR.perImage(a, a), [PSNR.maximumDecibels, PSNR.maximumDecibels])
        XCTAssertEqual(PSNR.decibels(meanSquaredError: 1e-12), PSNR.maximumDecibels)
        XCTAssertEqual(PSNR.decibels(meanSquaredError: 1e-3), 30, accuracy: 1e-12)
        // 1.7 and 1.0 are both white once clamped.
        let white = Tensor(repeating: 1, shape: [1, 4, 4])
        XCTAssertEqual(PSNR.perImage(Tensor(repeating: 1.7, shape: [1, 4, 4]), white), [PSNR.maximumDecibels])
    }

    func testPSNRMatchesThePythonFixture() throws {
        let (fixture, bytes) = try loadFixture()
        for pair in fixture.pairs {
            let n = pair.shape.reduce(1, *)
            let a = image(bytes, offset: pair.offset, shape: pair.shape)
            let b = image(bytes, offset: pair.offset + n, shape: pair.shape)
            XCTAssertEqual(PSNR.perImage(a, b)[0], pair.psnr, accuracy: 1e-6, pair.name)
        }
    }

    // MARK: SSIM

    func testSSIMOfIdenticalImagesIsOne() {
        for shape in [[3, 1, 32, 32], [2, 3, 16, 24]] {
            let a = uniformImages(shape, seed: 3)
            for s in SSIM().perImage(a, a) { XCTAssertEqual(s, 1, accuracy: 1e-12, "\(shape)") }
        }
    }

    func testSSIMMatchesThePythonFixture() throws {
        let (fixture, bytes) = try loadFixture()
        XCTAssertEqual(fixture.pairs.count, 6)
        let ssim = SSIM()
        for pair in fixture.pairs {
            let n = pair.shape.reduce(1, *)
            let a = image(bytes, offset: pair.offset, shape: pair.shape)
            let b = image(bytes, offset: pair.offset + n, shape: pair.shape)
            let score = ssim.perImage(a, b)[0]
            // Both sides compute in float64 (they agree to ~1e-14); 1e-9 leaves room for summation order only.
            XCTAssertEqual(score, pair.ssim, accuracy: 1e-9, pair.name)
            XCTAssertEqual(ssim.perImage(b, a)[0], score, accuracy: 1e-12, "\(pair.name) is symmetric")
        }
    }

    func testSSIMOfABatchEqualsEachImageAlone() {
        let a = uniformImages([5, 3, 20, 20], seed: 4)
        let b = (a + uniformImages([5, 3, 20, 20], seed: 5) * 0.3).clamped(min: -1, max: 1)
        let batch = SSIM().perImage(a, b)
        XCTAssertEqual(batch.count, 5)
        for n in 0..<5 {
            let one = SSIM().perImage(a.slice(alongAxis: 0, n..<n + 1), b.slice(alongAxis: 0, n..<n + 1))
            XCTAssertEqual(one[0], batch[n], accuracy: 1e-15)
            XCTAssertLessThan(batch[n], 1)
        }
    }

    func testSSIMOfFlatImagesIsTheLuminanceTerm() {
        // No variance anywhere: contrast-structure is C2 / C2 = 1, so SSIM = (2μxμy + C1) / (μx² + μy² + C1).
        let a = Tensor(repeating: -0.2, shape: [1, 1, 12, 12]), b = Tensor(repeating: 0.6, shape: [1, 1, 12, 12])
        let (mx, my, c1) = (Double(Float(-0.2)) * 0.5 + 0.5, Double(Float(0.6)) * 0.5 + 0.5, 1e-4)
        XCTAssertEqual(SSIM().perImage(a, b)[0], (2 * mx * my + c1) / (mx * mx + my * my + c1), accuracy: 1e-12)
    }
}
