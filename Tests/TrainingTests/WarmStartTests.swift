import Checkpoint
import Distributed
import Foundation
import Models
import NN
import Tensor
import XCTest
@testable import Training

/// `model.ckpt_path`: a fresh run starting from saved weights instead of the initialisation.
final class WarmStartTests: XCTestCase {
    var tiny: TinyRun!

    override func setUpWithError() throws { tiny = try TinyRun() }
    override func tearDown() { tiny.remove() }

    func start(_ config: AutoencoderTrainingConfig, resume: String? = nil) throws -> AutoencoderTrainer {
        try AutoencoderTrainer.start(config: config, communicator: SingleProcessCommunicator(), resume: resume)
    }

    func weights(_ trainer: AutoencoderTrainer) -> [String: [Float]] {
        Dictionary(uniqueKeysWithValues: trainer.model.module.orderedStateDict().map { ($0.0, $0.1.scalars) })
    }

    func testStartsFromASavedModelOrACheckpointDirectory() throws {
        let source = try start(try tiny.config(run: "source", maxSteps: 3, discStart: 1000, checkpointEvery: 3))
        try source.train()
        let trained = weights(source)
        let file = tiny.runDirectory("source").appendingPathComponent("autoencoder.safetensors")
        for path in [file.path, tiny.checkpoint("source", step: 3).path] {
            var config = try tiny.config(run: "warm-\(UUID().uuidString)", maxSteps: 3, discStart: 1000)
            config.trainer.seed = 99  // another initialisation, which the file must replace
            config.model.ckptPath = path
            XCTAssertEqual(weights(try start(config)), trained, path)
        }
    }

    func testIgnoredKeysKeepTheirInitialisation() throws {
        let source = try start(try tiny.config(run: "source", maxSteps: 2, discStart: 1000))
        try source.train()
        var config = try tiny.config(run: "warm", maxSteps: 2, discStart: 1000)
        config.trainer.seed = 99
        let fresh = weights(try start(config))
        config.model.ckptPath = tiny.runDirectory("source").appendingPathComponent("autoencoder.safetensors").path
        config.model.ignoreKeys = ["decoder."]
        let warm = weights(try start(config)), trained = weights(source)
        for (name, value) in warm {
            XCTAssertEqual(value, name.hasPrefix("decoder.") ? fresh[name] : trained[name], name)
        }
    }

    func testAnotherArchitectureOrAMissingFileIsRefusedByName() throws {
        let source = try start(try tiny.config(run: "source", maxSteps: 1, discStart: 1000))
        try source.train()
        var config = try tiny.config(run: "warm", maxSteps: 1, discStart: 1000)
        config.model.autoencoder.zChannels = 8
        config.model.autoencoder.embedDim = 8
        config.model.ckptPath = tiny.runDirectory("source").appendingPathComponent("autoencoder.safetensors").path
        XCTAssertThrowsError(try start(config)) { error in
            XCTAssertTrue("\(error)".contains("autoencoder.safetensors"), "\(error)")
            XCTAssertTrue("\(error)".contains("quant_conv.weight"), "\(error)")
        }
        config = try tiny.config(run: "warm", maxSteps: 1, discStart: 1000)
        config.model.ckptPath = tiny.root.appendingPathComponent("nowhere.safetensors").path
        XCTAssertThrowsError(try start(config)) { error in
            XCTAssertTrue("\(error)".contains("model.ckpt_path") && "\(error)".contains("nowhere.safetensors"), "\(error)")
        }
    }

    /// Resuming takes the checkpoint's weights; where the run first came from may change.
    func testResumeIgnoresCkptPath() throws {
        var config = try tiny.config(run: "run", maxSteps: 2, discStart: 1000, checkpointEvery: 2)
        let trainer = try start(config)
        try trainer.train()
        config.model.ckptPath = tiny.root.appendingPathComponent("nowhere.safetensors").path
        config.trainer.maxSteps = 3
        let resumed = try start(config, resume: "latest")
        XCTAssertEqual(resumed.step, 2)
        XCTAssertEqual(weights(resumed), weights(trainer))
    }
}
