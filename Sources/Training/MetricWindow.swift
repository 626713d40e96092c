/// Per-step metrics summed since the last progress line, kept in the trainer (not in a loop
/// variable) so that a checkpoint taken between two progress lines carries the partial sums
/// and the resumed run logs the very same values.
public struct MetricWindow: Codable, Equatable, Sendable {
    public var sums: [String: Float] = [:]
    public var count = 0

    public init() {}

    public mutating func add(_ metrics: [String: Float]) {
        for (k, v) in metrics { sums[k, default: 0] += v }
        count += 1
    }

    /// This rank's mean of each metric over the window.
    public var means: [String: Float] { sums.mapValues { $0 / Float(count) } }

    /// One window from several ranks' windows (a world-size change on resume): the mean of
    /// their sums, so that the rank average logged at the next progress line is, up to
    /// rounding, the one the old ranks would have logged.
    public static func merged(_ windows: [MetricWindow]) -> MetricWindow {
        guard let first = windows.first else { return MetricWindow() }
        var result = MetricWindow()
        result.count = first.count
        let keys = Set(windows.flatMap { $0.sums.keys })
        for key in keys {
            result.sums[key] = windows.reduce(Float(0)) { $0 + ($1.sums[key] ?? 0) } / Float(windows.count)
        }
        return result
    }
}
