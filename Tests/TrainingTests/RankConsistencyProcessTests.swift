import Foundation
import TestSupport
import XCTest
@testable import Training

/// A rank whose data or config differs from rank 0's is refused before the first step, by
/// rank and host, under a real `mpirun -np 2` (one app context per rank, as a hostfile node
/// with its own copy of the files would be).
final class RankConsistencyProcessTests: XCTestCase {
    var tiny: TinyRun!

    override func setUpWithError() throws { tiny = try TinyRun() }
    override func tearDown() { tiny.remove() }

    /// Runs rank 0 and rank 1 as separate app contexts, each with its config and directory.
    func twoRanks(_ rank0: (config: URL, directory: URL), _ rank1: (config: URL, directory: URL)) throws -> ProcessOutcome {
        let ldm = try Launcher.builtProduct("ldm").path
        let context = { (rank: (config: URL, directory: URL)) in
            ["-np", "1", "-wdir", rank.directory.path, ldm, "train-autoencoder", "--config", rank.config.path]
        }
        let global = ["--oversubscribe", "--bind-to", "none", "--allow-run-as-root"]
        return try Launcher.run(try Launcher.mpirun(), global + context(rank0) + [":"] + context(rank1),
                                environment: ["LDM_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"], timeout: 90)
    }

    /// A node directory holding `images/` (relative in the config, as on a cluster where every
    /// node has its own copy at the same path); the run directory is shared (absolute).
    func node(_ name: String, images: Int, seed: UInt64) throws -> URL {
        let directory = tiny.root.appendingPathComponent(name)
        try TinyRun.writeImages(to: directory.appendingPathComponent("images"), count: images, seed: seed)
        return directory
    }

    func relativeConfig(_ name: String, learningRate: String = "1.0e-3") throws -> URL {
        let text = tiny.yaml(run: "run", maxSteps: 3, discStart: 100)
            .replacingOccurrences(of: tiny.images.path, with: "images")
            .replacingOccurrences(of: "base_learning_rate: 1.0e-3", with: "base_learning_rate: \(learningRate)")
        return try tiny.configFile(name, text)
    }

    func assertRefusedBeforeTraining(_ outcome: ProcessOutcome, naming fragments: [String],
                                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertNotEqual(outcome.status, 0, outcome.all, file: file, line: line)
        XCTAssertTrue(outcome.all.contains("ranks disagree before training"), outcome.all, file: file, line: line)
        for fragment in fragments {
            XCTAssertTrue(outcome.all.contains(fragment), "missing '\(fragment)' in:\n\(outcome.all)", file: file, line: line)
        }
        XCTAssertFalse(outcome.all.contains("step 1/3"), "a step ran:\n\(outcome.all)", file: file, line: line)
    }

    func testRankWithAnotherCopyOfTheDataIsRefusedByName() throws {
        let config = try relativeConfig("config.yaml")
        let a = try node("node-a", images: 10, seed: 1), b = try node("node-b", images: 11, seed: 1)
        let outcome = try twoRanks((config, a), (config, b))
        assertRefusedBeforeTraining(outcome, naming: ["rank 1 (host ", "dataset is 'image-folder/images/11/",
                                                      "rank 0 (host ", "has 'image-folder/images/10/"])
    }

    func testRankWithAnotherConfigIsRefusedByName() throws {
        let a = try node("node-a", images: 10, seed: 1), b = try node("node-b", images: 10, seed: 1)
        let outcome = try twoRanks((try relativeConfig("a.yaml"), a), (try relativeConfig("b.yaml", learningRate: "2.0e-3"), b))
        assertRefusedBeforeTraining(outcome, naming: ["rank 1 (host ", "config is '"])
        XCTAssertFalse(outcome.all.contains("dataset is"), outcome.all)
    }

    func testSameConfigAndDataOnEveryRankTrains() throws {
        let config = try relativeConfig("config.yaml")
        let a = try node("node-a", images: 10, seed: 1), b = try node("node-b", images: 10, seed: 1)
        let outcome = try twoRanks((config, a), (config, b))
        XCTAssertEqual(outcome.status, 0, outcome.all)
        XCTAssertTrue(outcome.all.contains("step 3/3"), outcome.all)
    }

    func testMismatchLinesNameEveryDifferingFact() {
        let facts = [RankConsistency.Facts(host: "a", values: ["config": "1", "dataset": "d"]),
                     RankConsistency.Facts(host: "b", values: ["config": "1", "dataset": "d"]),
                     RankConsistency.Facts(host: "c", values: ["config": "2"])]
        XCTAssertEqual(RankConsistency.mismatches(facts), [
            "rank 2 (host c): config is '2', rank 0 (host a) has '1'",
            "rank 2 (host c): dataset is missing, rank 0 (host a) has 'd'",
        ])
        XCTAssertEqual(RankConsistency.mismatches(Array(facts.prefix(2))), [])
    }
}
