import Foundation

/// Cumulative wall time of the calls it times: how much of training went into collectives.
/// Time in a collective includes waiting for the slowest rank to arrive, so it measures load
/// imbalance as well as transfer.
public final class Stopwatch {
    public private(set) var seconds: Double = 0
    public private(set) var calls = 0

    public init() {}

    public func time<T>(_ body: () throws -> T) rethrows -> T {
        let start = DispatchTime.now().uptimeNanoseconds
        defer {
            seconds += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            calls += 1
        }
        return try body()
    }

    public func reset() {
        seconds = 0
        calls = 0
    }
}
