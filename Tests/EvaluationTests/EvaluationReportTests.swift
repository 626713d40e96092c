import Foundation
import XCTest
@testable import Evaluation

final class EvaluationReportTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("evaluation-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    let report = EvaluationReport(
        split: "test", step: 12_000, imageCount: 10_000,
        metrics: ["psnr": MetricSummary(count: 10_000, mean: 27.318, std: 2.25, min: 19.5, max: 100),
                  "ssim": MetricSummary(count: 10_000, mean: 0.8125, std: 0.0625, min: 0.25, max: 1),
                  "lpips": MetricSummary(count: 0, mean: nil, std: nil, min: nil, max: nil)],
        metadata: ["model": "kl-f4", "ddim_steps": 50, "guidance_scale": 7.5, "ema": true])

    func testJSONRoundTripWithSortedKeys() throws {
        let url = dir.appendingPathComponent("metrics.json")
        try report.write(to: url)
        XCTAssertEqual(try EvaluationReport.read(from: url), report)

        let text = try String(contentsOf: url, encoding: .utf8)
        XCTAssertTrue(text.hasSuffix("}\n"))
        let keys = ["\"imageCount\"", "\"metadata\"", "\"metrics\"", "\"split\"", "\"step\""]
        let positions = keys.map { text.range(of: $0)!.lowerBound }
        XCTAssertEqual(positions, positions.sorted(), "top-level keys in sorted order")
        XCTAssertTrue(text.contains("\"ddim_steps\" : 50"), "numbers stay numbers:\n\(text)")
        XCTAssertTrue(text.contains("\"ema\" : true"))
    }

    func testRewriteReplacesTheFileAndLeavesNoTemporaries() throws {
        let url = dir.appendingPathComponent("metrics.json")
        try report.write(to: url)
        var later = report
        later.step = 24_000
        try later.write(to: url)
        XCTAssertEqual(try EvaluationReport.read(from: url).step, 24_000)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["metrics.json"])
    }

    func testErrorsNameTheFile() throws {
        let missing = dir.appendingPathComponent("nowhere/metrics.json")
        XCTAssertThrowsError(try report.write(to: missing)) { XCTAssertTrue("\($0)".contains("nowhere"), "\($0)") }
        let garbage = dir.appendingPathComponent("garbage.json")
        try Data("{".utf8).write(to: garbage)
        XCTAssertThrowsError(try EvaluationReport.read(from: garbage)) { XCTAssertTrue("\($0)".contains("garbage.json"), "\($0)") }
    }
}
