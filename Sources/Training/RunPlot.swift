import Data
import Foundation

/// `ldm plot RUN`: a run's curves from its metrics.jsonl (and heldout.jsonl) drawn to a PNG.
public enum RunPlot {
    /// Every numeric metric of the run by name, as (step, value) in file order.
    public static func series(in run: URL) throws -> [String: [(step: Double, value: Double)]] {
        var result: [String: [(step: Double, value: Double)]] = [:]
        for (file, prefix) in [("metrics.jsonl", ""), ("heldout.jsonl", "heldout/"), ("samples.jsonl", "samples/")] {
            let url = run.appendingPathComponent(file)
            guard let data = FileManager.default.contents(atPath: url.path) else {
                if file == "metrics.jsonl" { throw ConfigError(file: url.path, "no metrics.jsonl: not a run directory (or no step logged yet)") }
                continue
            }
            for (number, line) in data.split(separator: UInt8(ascii: "\n")).enumerated() {
                guard let record = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else {
                    throw ConfigError(file: url.path, "line \(number + 1) is not a JSON object")
                }
                guard let step = (record["step"] as? NSNumber)?.doubleValue else { continue }
                for (key, value) in record where key != "step" {
                    guard !(value is Bool), let number = value as? NSNumber else { continue }
                    result[prefix + key, default: []].append((step, number.doubleValue))
                }
            }
        }
        return result
    }

    /// Draws `metrics` (default: every metric but the timing) to `out`. Losses and gradient
    /// norms on a log scale, the rest linear. Returns the names drawn.
    @discardableResult
    public static func write(run: URL, metrics: [String]?, to out: URL) throws -> [String] {
        let all = try series(in: run)
        let names = try metrics.map { wanted -> [String] in
            for name in wanted where all[name] == nil {
                throw ConfigError(file: run.path, "no metric '\(name)'; the run logs: \(all.keys.sorted().joined(separator: ", "))")
            }
            return wanted
        } ?? all.keys.filter { $0 != "seconds_per_step" && !$0.hasPrefix("heldout/bucket") && !$0.hasSuffix("/count") }.sorted()
        let logarithmic = { (name: String) in
            name.contains("loss") || name.contains("mse") || name.contains("grad_norm")
        }
        let image = LinePlot.render(names.map { LinePlot.Series(name: $0, points: all[$0]!, logarithmic: logarithmic($0)) })
        try PNG.write(image, to: out)
        return names
    }
}
