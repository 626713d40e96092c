import Distributed
import Foundation
import XCTest
@testable import Evaluation

final class MetricAccumulatorTests: XCTestCase {
    let psnr: [Double] = [21.5, 30.25, 27.0, 33.125, 18.75, 25.5, 29.0, 31.5, 24.25, 26.0]
    let ssim: [Double] = [0.61, 0.93, 0.85, 0.97, 0.42, 0.77, 0.88, 0.95, 0.71, 0.8]

    func direct(_ values: [Double]) -> (mean: Double, std: Double) {
        let mean = values.reduce(0, +) / Double(values.count)
        let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)
        return (mean, variance.squareRoot())
    }

    func assertSummary(_ s: MetricSummary?, of values: [Double], file: StaticString = #filePath, line: UInt = #line) {
        guard let s else { return XCTFail("missing summary", file: file, line: line) }
        let (mean, std) = direct(values)
        XCTAssertEqual(s.count, values.count, file: file, line: line)
        XCTAssertEqual(s.mean!, mean, accuracy: 1e-12, file: file, line: line)
        XCTAssertEqual(s.std!, std, accuracy: 1e-9, file: file, line: line)
        let (low, high) = (values.min()!, values.max()!)
        XCTAssertEqual(s.min, low, file: file, line: line)
        XCTAssertEqual(s.max, high, file: file, line: line)
    }

    func testSingleProcessGivesTheMeanAndPopulationStd() throws {
        var acc = MetricAccumulator(names: ["psnr", "ssim", "lpips"])
        acc.add("psnr", Array(psnr[0..<4]))
        for v in psnr[4...] { acc.add("psnr", v) }
        acc.add("ssim", ssim)
        let summaries = try acc.reduced(over: SingleProcessCommunicator())
        assertSummary(summaries["psnr"], of: psnr)
        assertSummary(summaries["ssim"], of: ssim)
        XCTAssertEqual(summaries["lpips"], MetricSummary(count: 0, mean: nil, std: nil, min: nil, max: nil))
        XCTAssertEqual(summaries, acc.localSummaries)
    }

    func testTwoRanksGiveTheGlobalMeanHoweverImagesAreSplit() throws {
        // Uneven shards (the mean of per-rank means would be wrong), and a rank with no images.
        let (psnr, ssim) = (self.psnr, self.ssim)
        for split in [7, 3, 0, 10] {
            let results = LocalGroup(size: 2).run { comm -> [String: MetricSummary] in
                let range = comm.rank == 0 ? 0..<split : split..<10
                var acc = MetricAccumulator(names: ["psnr", "ssim"])
                acc.add("psnr", Array(psnr[range]))
                acc.add("ssim", Array(ssim[range]))
                return try acc.reduced(over: comm)
            }
            let summaries = try results.map { try $0.get() }
            XCTAssertEqual(summaries[0], summaries[1], "ranks agree, split \(split)")
            assertSummary(summaries[0]["psnr"], of: psnr)
            assertSummary(summaries[0]["ssim"], of: ssim)
        }
    }

    func testRanksWithDifferentMetricNamesAllThrow() {
        let results = LocalGroup(size: 2).run { comm in
            var acc = MetricAccumulator(names: comm.rank == 0 ? ["psnr", "ssim"] : ["ssim", "psnr"])
            acc.add("psnr", 20)
            return try acc.reduced(over: comm)
        }
        for r in results {
            XCTAssertThrowsError(try r.get()) { error in
                XCTAssertTrue("\(error)".contains("differ from rank 1"), "\(error)")
            }
        }
    }
}
