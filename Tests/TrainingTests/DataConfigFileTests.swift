import Foundation
@testable import Training
import XCTest

final class DataConfigFileTests: XCTestCase {
    func write(_ text: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("data-config-\(UUID().uuidString).yaml")
        try Data(text.utf8).write(to: url)
        return url
    }

    func testReadsTheDataSectionOfATrainingConfig() throws {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let config = try DataConfig.load(fromConfigFile: repo.appendingPathComponent("Configs/autoencoder_kl_f4_fashion_mnist.yaml"))
        XCTAssertEqual(config.dataset, .fashionMNIST)
        XCTAssertEqual(config.resolution, 32)
        XCTAssertEqual(config.fit, .pad)
        XCTAssertEqual(config.batchSize, 16)
    }

    func testReadsAFileThatIsOnlyADataSectionAndRejectsUnknownKeys() throws {
        let url = try write("dataset: image-folder\npath: /data/x\nresolution: 64\n")
        defer { try? FileManager.default.removeItem(at: url) }
        let config = try DataConfig.load(fromConfigFile: url)
        XCTAssertEqual(config.dataset, .imageFolder)
        XCTAssertEqual(config.channels, 3)
        XCTAssertEqual(config.resolution, 64)
        let bad = try write("data:\n  dataset: fashion-mnist\n  resolutoin: 28\n")
        defer { try? FileManager.default.removeItem(at: bad) }
        XCTAssertThrowsError(try DataConfig.load(fromConfigFile: bad)) { error in
            XCTAssertTrue("\(error)".contains("unknown key resolutoin"), "\(error)")
        }
    }
}
