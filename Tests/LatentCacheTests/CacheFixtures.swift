import Data
import Distributed
import Foundation
import LatentCache
import Models
import Tensor
import XCTest

/// A tiny random-weight autoencoder and a tiny PNG folder, written once per test into a
/// temporary directory, so the caches tests build take a fraction of a second.
final class CacheFixtures {
    let root: URL
    let autoencoderURL: URL
    let trainImages: URL
    let testImages: URL
    let config: AutoencoderConfig

    init(regularizer: AutoencoderConfig.Regularizer = .kl, seed: UInt64 = 7, trainCount: Int = 22, testCount: Int = 9) throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("latent-cache-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        var c = AutoencoderConfig()
        c.regularizer = regularizer
        c.resolution = 16
        c.ch = 32
        c.chMult = [1, 2]
        c.numResBlocks = 1
        c.zChannels = 3
        c.embedDim = 3
        c.nEmbed = 16
        config = c
        autoencoderURL = root.appendingPathComponent("autoencoder-\(seed).safetensors")
        try Self.writeAutoencoder(c, seed: seed, to: autoencoderURL)
        trainImages = root.appendingPathComponent("train")
        testImages = root.appendingPathComponent("test")
        try Self.writeImages(trainCount, seed: 1, to: trainImages)
        try Self.writeImages(testCount, seed: 2, to: testImages)
    }

    deinit { try? FileManager.default.removeItem(at: root) }

    static func writeAutoencoder(_ config: AutoencoderConfig, seed: UInt64, to url: URL) throws {
        var g = RandomGenerator(seed: seed)
        let model = FirstStageModel(config, generator: &g)
        try FirstStageModel.save(model, config: config, step: 0, to: url)
    }

    /// Smooth random blobs (compressible like real images), in two class folders.
    static func writeImages(_ count: Int, seed: UInt64, to dir: URL) throws {
        var g = RandomGenerator(seed: seed)
        for i in 0..<count {
            let folder = dir.appendingPathComponent(i % 2 == 0 ? "even" : "odd")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let cx = g.nextUniform() * 16, cy = g.nextUniform() * 16, r = 2 + g.nextUniform() * 6
            var pixels = [UInt8](repeating: 0, count: 16 * 16)
            for y in 0..<16 {
                for x in 0..<16 {
                    let d = ((Float(x) - cx) * (Float(x) - cx) + (Float(y) - cy) * (Float(y) - cy)).squareRoot()
                    pixels[y * 16 + x] = UInt8(max(0, min(255, 255 * (1 - d / r) + 20 * g.nextUniform())))
                }
            }
            try PNG.write(Image8(width: 16, height: 16, channels: 1, pixels: pixels),
                          to: folder.appendingPathComponent(String(format: "img%03d.png", i)))
        }
    }

    func splits(trainLimit: Int? = nil) throws -> [CacheSplitSource] {
        let train = try ImageFolder(root: trainImages, channels: 1, resolution: 16, fit: .pad)
        let test = try ImageFolder(root: testImages, channels: 1, resolution: 16, fit: .pad)
        return [CacheSplitSource(name: "train", dataset: trainLimit.map { DatasetPrefix(train, count: $0) } ?? train),
                CacheSplitSource(name: "test", dataset: test)]
    }

    func directory(_ name: String) -> URL { root.appendingPathComponent(name) }

    @discardableResult
    func precompute(into dir: URL, shardSize: Int = 5, dtype: LatentDType = .float16, stopAfter: Int? = nil,
                    autoencoder: URL? = nil, trainLimit: Int? = nil, batchSize: Int = 4) throws -> PrecomputeReport {
        var options = PrecomputeOptions()
        options.shardSize = shardSize
        options.dtype = dtype
        options.batchSize = batchSize
        options.stopAfterShards = stopAfter
        let precomputer = try LatentPrecomputer(autoencoder: autoencoder ?? autoencoderURL, splits: try splits(trainLimit: trainLimit),
                                                preprocessing: .init(resolution: 16, fit: "pad", channels: 1),
                                                directory: dir, options: options, communicator: SingleProcessCommunicator())
        return try precomputer.run()
    }

    /// Every regular file under `dir` (names including hidden ones) with its bytes.
    static func files(in dir: URL) throws -> [String: Data] {
        var result: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: dir.path) {
            result[name] = try Data(contentsOf: dir.appendingPathComponent(name))
        }
        return result
    }
}

/// Asserts that `body` throws an error whose description contains every one of `fragments`.
func assertThrows(_ fragments: [String], file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void) {
    do {
        try body()
        XCTFail("expected an error mentioning \(fragments)", file: file, line: line)
    } catch {
        let text = "\(error)"
        for f in fragments { XCTAssertTrue(text.contains(f), "error «\(text)» does not mention «\(f)»", file: file, line: line) }
    }
}
