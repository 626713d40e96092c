import XCTest
@testable import Distributed

final class LearningRateScalingTests: XCTestCase {
    func testScaledRateIsTheProductAndIsLoggedLikeTheReference() throws {
        let s = try LearningRateScaling(baseLearningRate: 1.5e-5, ranks: 2, batchPerRank: 16, accumulateGradientBatches: 1)
        XCTAssertEqual(s.effectiveBatchSize, 32)
        XCTAssertEqual(s.learningRate, 4.8e-4, accuracy: 1e-15)
        XCTAssertEqual(s.description,
                       "Setting learning rate to 4.80e-04 = 1 (accumulate_grad_batches) * 2 (ranks) * 16 (batchsize) * 1.50e-05 (base_lr)")

        let accumulated = try LearningRateScaling(baseLearningRate: 4.5e-6, ranks: 3, batchPerRank: 12, accumulateGradientBatches: 2)
        XCTAssertEqual(accumulated.learningRate, 2 * 3 * 12 * 4.5e-6, accuracy: 1e-15)
        XCTAssertEqual(accumulated.description,
                       "Setting learning rate to 3.24e-04 = 2 (accumulate_grad_batches) * 3 (ranks) * 12 (batchsize) * 4.50e-06 (base_lr)")
    }

    func testSameEffectiveBatchGivesTheSameRateWhateverTheSplit() throws {
        // 1 rank × 32 and 4 ranks × 8 train on the same global batch: same step size.
        let one = try LearningRateScaling(baseLearningRate: 1e-6, ranks: 1, batchPerRank: 32)
        let four = try LearningRateScaling(baseLearningRate: 1e-6, ranks: 4, batchPerRank: 8)
        XCTAssertEqual(one.learningRate, four.learningRate)
    }

    func testWithoutScalingTheBaseRateIsUsed() throws {
        let s = try LearningRateScaling(baseLearningRate: 2e-4, ranks: 8, batchPerRank: 16, accumulateGradientBatches: 4, scale: false)
        XCTAssertEqual(s.learningRate, 2e-4)
        XCTAssertEqual(s.description, "Not using learning rate scaling: setting learning rate to 2.00e-04 (base_lr)")
    }

    func testInvalidValuesAreNamed() {
        XCTAssertThrowsError(try LearningRateScaling(baseLearningRate: 0, ranks: 1, batchPerRank: 1)) {
            XCTAssertTrue("\($0)".contains("base learning rate 0.0"), "\($0)")
        }
        XCTAssertThrowsError(try LearningRateScaling(baseLearningRate: .nan, ranks: 1, batchPerRank: 1))
        XCTAssertThrowsError(try LearningRateScaling(baseLearningRate: 1e-4, ranks: 0, batchPerRank: 1)) {
            XCTAssertEqual("\($0)", "learning rate scaling: ranks is 0, must be at least 1")
        }
        XCTAssertThrowsError(try LearningRateScaling(baseLearningRate: 1e-4, ranks: 1, batchPerRank: 0)) {
            XCTAssertTrue("\($0)".contains("batch per rank is 0"), "\($0)")
        }
        XCTAssertThrowsError(try LearningRateScaling(baseLearningRate: 1e-4, ranks: 1, batchPerRank: 1, accumulateGradientBatches: 0)) {
            XCTAssertTrue("\($0)".contains("accumulate_grad_batches is 0"), "\($0)")
        }
    }
}
