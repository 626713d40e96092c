import Distributed
import Foundation
import Tensor
import XCTest
@testable import Evaluation

/// Fréchet distance, precision/recall and the classifier scores against values computed
/// independently with numpy/scipy (Tests/Fixtures/generate_feature_metric_fixtures.py), plus
/// closed forms and the independence from the number of ranks.
final class FeatureMetricTests: XCTestCase {
    struct Fixture: Decodable {
        struct Frechet: Decodable {
            let dimension: Int
            let a: [Float], b: [Float]
            let mean_a: [Double], cov_a: [Double]
            let fd: Double
        }
        struct PR: Decodable {
            let dimension: Int, k: Int
            let real: [Float], fake: [Float]
            let precision: Double, recall: Double
        }
        struct Inception: Decodable {
            let classes: Int
            let logits: [Float]
            let labels: [Int]
            let inception_score: Double, accuracy: Double
        }
        let frechet: [Frechet]
        let precision_recall: [PR]
        let inception: [Inception]
    }

    func fixture() throws -> Fixture {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/feature_metrics.json")
        return try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
    }

    func statistics(_ values: [Float], _ d: Int) -> FeatureStatistics {
        var s = FeatureStatistics(dimension: d)
        s.add(Tensor(shape: [values.count / d, d], scalars: values))
        return s
    }

    /// |a − b| ≤ tol relative to max(1, |b|); false for NaN.
    func assertNear(_ a: Double, _ b: Double, _ tol: Double, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertTrue(a.isFinite && abs(a - b) <= tol * max(1, abs(b)), "\(what): \(a) vs \(b)", file: file, line: line)
    }

    func testMeanAndCovarianceMatchNumpy() throws {
        for case_ in try fixture().frechet {
            let s = statistics(case_.a, case_.dimension)
            for (x, y) in zip(s.mean, case_.mean_a) { assertNear(x, y, 1e-9, "mean") }
            for (x, y) in zip(s.covariance, case_.cov_a) { assertNear(x, y, 1e-9, "covariance") }
        }
    }

    func testFrechetDistanceMatchesScipy() throws {
        for case_ in try fixture().frechet {
            let fd = try FrechetDistance.between(statistics(case_.a, case_.dimension), statistics(case_.b, case_.dimension))
            assertNear(fd, case_.fd, 1e-7, "FD d=\(case_.dimension)")
        }
    }

    func testFrechetDistanceOfDiagonalGaussiansIsTheClosedForm() throws {
        // Commuting covariances: FD = ‖μ₁ − μ₂‖² + Σ (σ₁ᵢ − σ₂ᵢ)².
        let d = 4
        let mu1 = [0.0, 1, 2, 3], mu2 = [1.0, 1, 0, 3]
        let var1 = [1.0, 4, 9, 0.25], var2 = [4.0, 1, 9, 1]
        func diag(_ v: [Double]) -> [Double] { (0..<d * d).map { $0 % (d + 1) == 0 ? v[$0 / (d + 1)] : 0 } }
        let fd = try FrechetDistance.distance(meanA: mu1, covarianceA: diag(var1), meanB: mu2, covarianceB: diag(var2), dimension: d)
        let expected = 1.0 + 4 + zip(var1, var2).map { pow($0.squareRoot() - $1.squareRoot(), 2) }.reduce(0, +)
        assertNear(fd, expected, 1e-12, "closed form")
        // A Gaussian is at distance zero from itself.
        let zero = try FrechetDistance.distance(meanA: mu1, covarianceA: diag(var1), meanB: mu1, covarianceB: diag(var1), dimension: d)
        XCTAssertEqual(zero, 0, accuracy: 1e-12)
    }

    func testSymmetricEigenRebuildsTheMatrixAndItsSquareRoot() throws {
        let d = 5
        var g = RandomGenerator(seed: 3)
        let x = Tensor.randomNormal([20, d], generator: &g)
        let c = statistics(x.scalars, d).covariance
        let eigen = try SymmetricEigen(symmetric: c, n: d)
        XCTAssertEqual(eigen.values, eigen.values.sorted())
        let rebuilt = eigen.applying { $0 }
        for (a, b) in zip(rebuilt, c) { assertNear(a, b, 1e-12, "V Λ Vᵀ") }
        let root = eigen.applying { $0.squareRoot() }
        let squared = FrechetDistance.multiply(root, root, d)
        for (a, b) in zip(squared, c) { assertNear(a, b, 1e-10, "√C √C") }
        XCTAssertThrowsError(try SymmetricEigen(symmetric: [1, .nan, .nan, 1], n: 2))
    }

    func testTooFewSamplesSaysHowManyAreNeeded() {
        let a = statistics((0..<12).map { Float($0 % 5) }, 4)  // 3 samples of 4-d features
        XCTAssertThrowsError(try FrechetDistance.between(a, a, names: ("generated", "real"))) { error in
            XCTAssertTrue("\(error)".contains("at least 5"), "\(error)")
            XCTAssertTrue("\(error)".contains("generated"), "\(error)")
        }
    }

    func testPrecisionRecallMatchesTheReferenceComputation() throws {
        for case_ in try fixture().precision_recall {
            let result = try PrecisionRecall.compute(real: case_.real, fake: case_.fake, dimension: case_.dimension, k: case_.k)
            assertNear(result.precision, case_.precision, 1e-12, "precision")
            assertNear(result.recall, case_.recall, 1e-12, "recall")
            XCTAssertGreaterThan(result.precision, 0)
            XCTAssertLessThan(result.precision, 1, "a toy case that cannot tell a wrong radius from a right one")
        }
    }

    func testPrecisionRecallOfASetWithItselfIsOne() throws {
        var g = RandomGenerator(seed: 5)
        let x = Tensor.randomNormal([50, 3], generator: &g).scalars
        let result = try PrecisionRecall.compute(real: x, fake: x, dimension: 3)
        XCTAssertEqual(result.precision, 1)
        XCTAssertEqual(result.recall, 1)
        // Far-away generated points: nothing inside the real manifold and vice versa.
        let far = x.map { $0 + 100 }
        let apart = try PrecisionRecall.compute(real: x, fake: far, dimension: 3)
        XCTAssertEqual(apart.precision, 0)
        XCTAssertEqual(apart.recall, 0)
    }

    func testInceptionScoreAndAccuracyMatchNumpy() throws {
        for case_ in try fixture().inception {
            var scores = ClassifierScores(classCount: case_.classes)
            let n = case_.labels.count
            // Two batches, to exercise the running sums.
            let half = n / 2 * case_.classes
            scores.add(logits: Tensor(shape: [n / 2, case_.classes], scalars: Array(case_.logits[..<half])), labels: Array(case_.labels[..<(n / 2)]))
            scores.add(logits: Tensor(shape: [n - n / 2, case_.classes], scalars: Array(case_.logits[half...])), labels: Array(case_.labels[(n / 2)...]))
            assertNear(scores.inceptionScore, case_.inception_score, 1e-5, "IS")
            assertNear(scores.accuracy, case_.accuracy, 1e-12, "accuracy")
        }
    }

    func testInceptionScoreLimits() {
        // Confident, balanced: the class count. All the same prediction: 1.
        let c = 4
        var confident = ClassifierScores(classCount: c)
        confident.add(logits: Tensor(shape: [c, c], scalars: (0..<c * c).map { $0 % (c + 1) == 0 ? 60 : 0 }), labels: nil)
        XCTAssertEqual(confident.inceptionScore, Double(c), accuracy: 1e-6)
        var same = ClassifierScores(classCount: c)
        same.add(logits: Tensor(shape: [3, c], scalars: [Float](repeating: 1, count: 3 * c)), labels: nil)
        XCTAssertEqual(same.inceptionScore, 1, accuracy: 1e-9)
    }

    /// Two ranks with uneven shares give what one process gives (exact sums, not means of means).
    func testTwoRanksGiveTheSingleProcessNumbers() throws {
        let f = try fixture()
        let fdCase = f.frechet[1], prCase = f.precision_recall[1], isCase = f.inception[0]
        let d = fdCase.dimension
        let single = try FrechetDistance.between(statistics(fdCase.a, d), statistics(fdCase.b, d))
        let singlePR = try PrecisionRecall.compute(real: prCase.real, fake: prCase.fake, dimension: prCase.dimension)
        let results = LocalGroup(size: 2).run { comm -> (Double, PrecisionRecall.Result, Double) in
            // Rank 0 takes the first third of the rows, rank 1 the rest.
            func mine(_ values: [Float], _ dim: Int) -> [Float] {
                let n = values.count / dim, cut = n / 3
                return comm.rank == 0 ? Array(values[..<(cut * dim)]) : Array(values[(cut * dim)...])
            }
            let a = try self.statistics(mine(fdCase.a, d), d).reduced(over: comm)
            let b = try self.statistics(mine(fdCase.b, d), d).reduced(over: comm)
            let pr = try PrecisionRecall.compute(real: prCase.real, fake: prCase.fake, dimension: prCase.dimension, communicator: comm)
            var scores = ClassifierScores(classCount: isCase.classes)
            let rows = mine(isCase.logits, isCase.classes)
            let labels = comm.rank == 0 ? Array(isCase.labels[..<(isCase.labels.count / 3)]) : Array(isCase.labels[(isCase.labels.count / 3)...])
            scores.add(logits: Tensor(shape: [rows.count / isCase.classes, isCase.classes], scalars: rows), labels: labels)
            return (try FrechetDistance.between(a, b), pr, try scores.reduced(over: comm).inceptionScore)
        }
        for result in results {
            let (fd, pr, score) = try result.get()
            assertNear(fd, single, 1e-9, "FD over 2 ranks")
            XCTAssertEqual(pr, singlePR)
            assertNear(score, isCase.inception_score, 1e-5, "IS over 2 ranks")
        }
    }
}
