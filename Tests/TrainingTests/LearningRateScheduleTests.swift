import Distributed
import Foundation
import XCTest
@testable import Training

final class LearningRateScheduleTests: XCTestCase {
    func testWarmupThenCosineOrLinearDecay() {
        let cosine = LearningRateSchedule(warmupSteps: 4, decay: .cosine, minFactor: 0.1)
        XCTAssertEqual((0..<4).map { cosine.factor(step: $0, totalSteps: 14) }, [0.25, 0.5, 0.75, 1])
        XCTAssertEqual(cosine.factor(step: 4, totalSteps: 14), 1, accuracy: 1e-12)  // decay starts at its top
        XCTAssertEqual(cosine.factor(step: 13, totalSteps: 14), 0.1, accuracy: 1e-12)  // and ends at min_factor
        // Half way through the decay, cos(π/2) = 0: the middle of [0.1, 1].
        let midway = LearningRateSchedule(decay: .cosine, minFactor: 0.1).factor(step: 5, totalSteps: 11)
        XCTAssertEqual(midway, 0.55, accuracy: 1e-12)
        let linear = LearningRateSchedule(decay: .linear)
        XCTAssertEqual((0..<5).map { linear.factor(step: $0, totalSteps: 5) }, [1, 0.75, 0.5, 0.25, 0])
        XCTAssertEqual(LearningRateSchedule(warmupSteps: 2).factor(step: 7, totalSteps: 10), 1)
        XCTAssertEqual(TrainerConfig().learningRateFactor(step: 3), 1, "no schedule: constant")
    }

    func testConfigSectionAndErrors() throws {
        let config = try ConfigLoader.parse(TrainerConfig.self,
                                            yaml: "max_steps: 10\nlr_schedule: {warmup_steps: 2, decay: linear, min_factor: 0.5}\n")
        XCTAssertEqual(config.lrSchedule, LearningRateSchedule(warmupSteps: 2, decay: .linear, minFactor: 0.5))
        XCTAssertEqual(config.learningRateFactor(step: 9), 0.5)
        XCTAssertThrowsError(try ConfigLoader.parse(TrainerConfig.self, yaml: "lr_schedule: {decay: exponential}\n"))
        XCTAssertThrowsError(try ConfigLoader.parse(TrainerConfig.self, yaml: "lr_schedule: {warmup: 3}\n")) { error in
            XCTAssertTrue("\(error)".contains("warmup"), "\(error)")
        }
        var bad = TrainerConfig()
        bad.lrSchedule = LearningRateSchedule(warmupSteps: -1, minFactor: 2)
        XCTAssertEqual(bad.validationErrors().count, 2, "\(bad.validationErrors())")
    }

    /// A config without the section encodes as before, so checkpoints written before the
    /// section existed still resume.
    func testAbsentScheduleLeavesTheConfigFingerprintAlone() throws {
        let json = try TrainingResume.canonicalJSON(TrainerConfig())
        XCTAssertFalse(json.contains("lr_schedule"), json)
    }

    /// The trainer steps both optimizers with base × factor(step), and logs it.
    func testTrainerAppliesTheScheduleEveryStep() throws {
        let tiny = try TinyRun()
        defer { tiny.remove() }
        var config = try tiny.config(run: "scheduled", maxSteps: 6, discStart: 0, logEvery: 1)
        config.trainer.lrSchedule = LearningRateSchedule(warmupSteps: 2, decay: .linear, minFactor: 0.25)
        let trainer = try AutoencoderTrainer.start(config: config, communicator: SingleProcessCommunicator())
        try trainer.train()
        let logged = try loggedLosses(tiny.runDirectory("scheduled")).map { try XCTUnwrap($0["lr"]) }
        let base = trainer.learningRate.learningRate
        let expected = (0..<6).map { base * config.trainer.learningRateFactor(step: $0) }
        XCTAssertEqual(logged.count, 6)
        for (a, b) in zip(logged, expected) { XCTAssertEqual(a, b, accuracy: 1e-6 * base) }
        XCTAssertEqual(trainer.autoencoderOptimizer.learningRate, base * 0.25, accuracy: 1e-12)
        XCTAssertEqual(trainer.discriminatorOptimizer.learningRate, base * 0.25, accuracy: 1e-12)
    }
}
