import Foundation

/// Progress lines and a metrics log for a training run, written by rank 0 only.
public final class ProgressReporter {
    let isRoot: Bool
    let totalSteps: Int
    let metricsFile: FileHandle?
    var lastTime: Double
    var lastStep: Int
    let startTime: Double
    /// The same scalars (and the run's image grids) as TensorBoard events, beside metrics.jsonl.
    private(set) var events: TensorBoardEventWriter?

    public init(isRoot: Bool, totalSteps: Int, startStep: Int, metricsURL: URL?) {
        self.isRoot = isRoot
        self.totalSteps = totalSteps
        let now = ProgressReporter.now()
        startTime = now
        lastTime = now
        lastStep = startStep
        if isRoot, let metricsURL {
            if !FileManager.default.fileExists(atPath: metricsURL.path) {
                _ = FileManager.default.createFile(atPath: metricsURL.path, contents: nil)
            }
            metricsFile = try? FileHandle(forUpdating: metricsURL)
            _ = try? metricsFile?.seekToEnd()
            do {
                events = try TensorBoardEventWriter(directory: metricsURL.deletingLastPathComponent())
            } catch {
                print("warning: no TensorBoard events in \(metricsURL.deletingLastPathComponent().path): \(error)")
            }
        } else {
            metricsFile = nil
        }
    }

    /// Scalars for TensorBoard only (held-out losses and the like; progress lines log theirs).
    public func scalars(_ values: [String: Float], step: Int) {
        guard let events else { return }
        do { try events.scalars(values, step: step) } catch { stopEvents(error) }
    }

    /// An image grid (a PNG file already written) for TensorBoard.
    public func image(_ tag: String, file: URL, step: Int) {
        guard let events else { return }
        do { try events.image(tag, pngFile: file, step: step) } catch { stopEvents(error) }
    }

    /// Logging must not stop training: one warning, then no more events.
    private func stopEvents(_ error: Error) {
        print("warning: TensorBoard events stopped (\(events?.url.path ?? "")): \(error)")
        events = nil
    }

    deinit { try? metricsFile?.close() }

    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    /// Prints a message on rank 0.
    public func say(_ message: String) {
        guard isRoot else { return }
        print(message)
        fflush(stdout)
    }

    /// One progress line with the given (already rank-averaged) metrics, and a JSON line in
    /// the metrics log. Returns seconds per step since the previous report.
    @discardableResult
    public func report(step: Int, metrics: [String: Float], order: [String]) -> Double {
        let now = ProgressReporter.now()
        let secondsPerStep = (now - lastTime) / Double(max(1, step - lastStep))
        lastTime = now
        lastStep = step
        guard isRoot else { return secondsPerStep }
        let shown = order.compactMap { key in metrics[key].map { "\(key) \(ProgressReporter.format($0))" } }
        let eta = Double(totalSteps - step) * secondsPerStep
        print(String(format: "step %d/%d | %@ | %.3f s/step | eta %@", step, totalSteps,
                     shown.joined(separator: " "), secondsPerStep, ProgressReporter.duration(eta)))
        fflush(stdout)
        var record: [String: Double] = metrics.mapValues(Double.init)
        record["step"] = Double(step)
        record["seconds_per_step"] = secondsPerStep
        if let data = try? JSONSerialization.data(withJSONObject: record, options: [.sortedKeys]) {
            metricsFile?.write(data + Data("\n".utf8))
        }
        scalars(metrics.merging(["seconds_per_step": Float(secondsPerStep)]) { a, _ in a }, step: step)
        return secondsPerStep
    }

    /// Resuming at `step`: drops metrics lines of later steps (logged by the interrupted run
    /// after its last checkpoint; the resumed run logs them again) and restarts the timing.
    public func resume(atStep step: Int) throws {
        lastStep = step
        lastTime = ProgressReporter.now()
        guard let metricsFile else { return }
        try metricsFile.seek(toOffset: 0)
        let data = try metricsFile.readToEnd() ?? Data()
        var keep = 0
        var start = 0
        for (i, byte) in data.enumerated() where byte == UInt8(ascii: "\n") {
            let line = data[start..<i]
            start = i + 1
            if let record = try? JSONSerialization.jsonObject(with: line) as? [String: Any],
               let logged = (record["step"] as? NSNumber)?.intValue, logged > step { break }
            keep = i + 1
        }
        try metricsFile.truncate(atOffset: UInt64(keep))
        try metricsFile.seekToEnd()
    }

    public var elapsed: Double { ProgressReporter.now() - startTime }

    static func format(_ v: Float) -> String {
        if v == 0 { return "0" }
        return abs(v) >= 1e4 || abs(v) < 1e-3 ? String(format: "%.3e", v) : String(format: "%.4f", v)
    }

    public static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "?" }
        let s = Int(seconds)
        return s >= 3600 ? "\(s / 3600)h\(s % 3600 / 60)m" : s >= 60 ? "\(s / 60)m\(s % 60)s" : "\(s)s"
    }
}
