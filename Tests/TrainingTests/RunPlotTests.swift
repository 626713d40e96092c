import Data
import Foundation
import XCTest
@testable import Training

/// `ldm plot`: a run's metrics become one panel each, with the curve where the values say.
final class RunPlotTests: XCTestCase {
    func testEachMetricGetsAPanelAndTheCurveIsDrawn() throws {
        let run = FileManager.default.temporaryDirectory.appendingPathComponent("plot-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: run) }
        let lines = (1...20).map { "{\"step\": \($0 * 10), \"loss\": \(1.0 / Double($0)), \"lr\": 0.001, \"seconds_per_step\": 0.5}" }
        try (lines.joined(separator: "\n") + "\n").write(to: run.appendingPathComponent("metrics.jsonl"), atomically: true, encoding: .utf8)
        try "{\"step\": 100, \"eps_mse\": 0.2, \"count\": 8}\n{\"step\": 200, \"eps_mse\": 0.1, \"count\": 8}\n"
            .write(to: run.appendingPathComponent("heldout.jsonl"), atomically: true, encoding: .utf8)
        let out = run.appendingPathComponent("curves.png")
        let drawn = try RunPlot.write(run: run, metrics: nil, to: out)
        XCTAssertEqual(drawn, ["heldout/eps_mse", "loss", "lr"])
        let image = try PNG.read(out)
        XCTAssertEqual(image.width, 800)
        XCTAssertEqual(image.height, 3 * 220)
        // The loss panel (the second) holds curve pixels, in the plot area only.
        let curve = LinePlot.line
        var hits = 0
        for y in 220..<440 { for x in 0..<800 where Array(image.pixels[((y * 800 + x) * 3)..<((y * 800 + x) * 3 + 3)]) == curve { hits += 1 } }
        XCTAssertGreaterThan(hits, 200)
        // A metric the run does not log is named with what it does log.
        XCTAssertThrowsError(try RunPlot.write(run: run, metrics: ["nope"], to: out)) { error in
            XCTAssertTrue("\(error)".contains("no metric 'nope'") && "\(error)".contains("loss"), "\(error)")
        }
        XCTAssertThrowsError(try RunPlot.write(run: run.appendingPathComponent("missing"), metrics: nil, to: out))
    }
}
