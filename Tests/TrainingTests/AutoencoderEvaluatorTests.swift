import Data
import Distributed
import Evaluation
import Foundation
import Models
import Tensor
import XCTest
@testable import Training

final class AutoencoderEvaluatorTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("evaluator-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for i in 0..<5 {
            let pixels = (0..<256).map { UInt8(($0 * 7 + i * 31) % 256) }
            try PNG.write(Image8(width: 16, height: 16, channels: 1, pixels: pixels), to: dir.appendingPathComponent("\(i).png"))
        }
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func tinyModel(resolution: Int = 16) -> FirstStageModel {
        var c = AutoencoderConfig()
        c.ch = 32
        c.chMult = [1, 2]
        c.numResBlocks = 1
        c.resolution = resolution
        var g = RandomGenerator(seed: 4)
        return FirstStageModel(c, generator: &g)
    }

    func testMetricsAreThoseOfTheReconstructions() throws {
        let images = try ImageFolder(root: dir, channels: 1, resolution: 16)
        let model = tinyModel()
        var evaluator = AutoencoderEvaluator(model: model, perceptual: nil, communicator: SingleProcessCommunicator())
        evaluator.batchSize = 2  // several batches, one partial
        let result = try evaluator.evaluate(images, limit: 4)
        XCTAssertEqual(result.imageCount, 4)
        let (x, _) = try images.batch([0, 1, 2, 3])
        let reconstruction = withoutGrad { model.reconstruct(x).clamped(min: -1, max: 1) }
        let expected = PSNR.perImage(reconstruction, x).reduce(0, +) / 4
        XCTAssertEqual(result.summaries["psnr"]?.count, 4)
        XCTAssertEqual(result.summaries["psnr"]?.mean ?? 0, expected, accuracy: 1e-6)
        XCTAssertEqual(result.summaries["lpips"]?.count, 0, "no LPIPS without weights")
        XCTAssertTrue(result.line.contains("psnr"))
    }

    func testImagesOfAnotherSizeAreRefused() throws {
        let images = try ImageFolder(root: dir, channels: 1, resolution: 16)
        let evaluator = AutoencoderEvaluator(model: tinyModel(resolution: 32), perceptual: nil,
                                             communicator: SingleProcessCommunicator())
        XCTAssertThrowsError(try evaluator.evaluate(images)) { XCTAssertTrue("\($0)".contains("expects 1×32×32"), "\($0)") }
    }
}
