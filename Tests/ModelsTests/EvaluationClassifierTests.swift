import Checkpoint
import Foundation
import XCTest
@testable import Models
import NN
import Tensor
import TestSupport

/// The evaluation classifier: shapes and key names, gradients through it and its loss, the
/// file round trip, and the VGG feature space's shape.
final class EvaluationClassifierTests: XCTestCase {
    func tiny() -> ClassifierConfig {
        var c = ClassifierConfig()
        c.resolution = 8
        c.numClasses = 3
        c.channels = [4, 8]
        c.convsPerLevel = 1
        c.normGroups = 2
        c.featureDim = 6
        return c
    }

    func testShapesAndKeys() {
        var g = RandomGenerator(seed: 1)
        let model = EvaluationClassifier(tiny(), generator: &g)
        let (features, logits) = model(Tensor.randomNormal([5, 1, 8, 8], generator: &g))
        XCTAssertEqual(features.shape, [5, 6])
        XCTAssertEqual(logits.shape, [5, 3])
        XCTAssertEqual(Set(model.stateDict().keys), ["levels.0.0.conv.weight", "levels.0.0.conv.bias", "levels.0.0.norm.weight",
                                                     "levels.0.0.norm.bias", "levels.1.0.conv.weight", "levels.1.0.conv.bias",
                                                     "levels.1.0.norm.weight", "levels.1.0.norm.bias", "hidden.weight", "hidden.bias",
                                                     "head.weight", "head.bias"])
        XCTAssertEqual(model.hidden.weight.shape, [6, 8 * 2 * 2], "the flattened 2×2 map of the last level")
    }

    func testCrossEntropyIsTheNegativeLogLikelihood() {
        let logits = Tensor(shape: [2, 3], scalars: [1, 2, 3, 0, 0, 0])
        let loss = EvaluationClassifier.crossEntropy(logits, labels: [2, 1]).item
        let expected = (-(3 - log(exp(1) + exp(2) + exp(3))) + log(3.0)) / 2
        XCTAssertEqual(Double(loss), expected, accuracy: 1e-6)
    }

    func testGradientsThroughTheClassifierAndItsLoss() {
        var g = RandomGenerator(seed: 2)
        let model = EvaluationClassifier(tiny(), generator: &g)
        let x = Tensor.randomNormal([2, 1, 8, 8], generator: &g)
        // Small steps: a larger one moves max-pool winners, where the loss has kinks.
        assertGradientsMatch([x, model.levels[0][0].conv.weight, model.hidden.weight], epsilon: 1e-3, atol: 1e-3, rtol: 3e-2,
                             maxElements: 12) { v in
            EvaluationClassifier.crossEntropy(model(v[0]).logits, labels: [0, 2])
        }
    }

    func testSaveLoadRoundTripAndFingerprint() throws {
        var g = RandomGenerator(seed: 3)
        let model = EvaluationClassifier(tiny(), generator: &g)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("classifier-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try model.save(to: url, metadata: ["ldm.classes": "a,b,c"])
        let (loaded, metadata, fingerprint) = try EvaluationClassifier.load(from: url)
        XCTAssertEqual(loaded.config, model.config)
        XCTAssertEqual(metadata["ldm.classes"], "a,b,c")
        XCTAssertEqual(fingerprint.count, 16)
        let x = Tensor.randomNormal([2, 1, 8, 8], generator: &g)
        model.eval()
        XCTAssertEqual(loaded(x).logits.scalars, model(x).logits.scalars)
        // Not a classifier file: named.
        try SafeTensors.write(["w": Tensor(zeros: [1])], to: url)
        XCTAssertThrowsError(try EvaluationClassifier.load(from: url)) { XCTAssertTrue("\($0)".contains("train-classifier"), "\($0)") }
    }

    func testInvalidConfigsNameTheProblem() {
        var c = tiny()
        c.normGroups = 3
        XCTAssertTrue(c.validationErrors().joined().contains("divisible by norm_groups"))
        c = tiny()
        c.resolution = 6
        c.channels = [4, 8, 8]
        XCTAssertTrue(c.validationErrors().joined().contains("divisible by 2^3"))
    }
}
