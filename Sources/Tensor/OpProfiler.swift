import Foundation

/// Wall time per op kind over one stretch of work (a training step), forward and backward
/// apart, for finding where a step's time goes.
///
/// Off by default; every hook is one branch on `isEnabled` when off. While on:
/// - forward: an op's time is the wall time since the previous mark (the end of the previous
///   op, backward rule or measured region), taken when the op attaches its backward rule
///   (`Tensor.recorded`), so each op counts its own work and any unrecorded work before it
///   (copies, allocations, glue) — never an inner op's, which marks first;
/// - backward: each node's backward rule is timed by its op name, gradient accumulation and
///   the graph walk by their own rows;
/// - anything else (the optimiser step) through `measure`.
/// Only the thread that turned profiling on records: kernels' worker threads never call the
/// hooks, and ops on other threads are not mixed in.
public enum OpProfiler {
    public enum Phase: String, Sendable { case forward, backward, other }

    public struct Row: Sendable {
        public let phase: Phase
        public let name: String
        public let calls: Int
        public let seconds: Double
    }

    /// One profiled stretch: the rows and its total wall time.
    public struct Profile: Sendable {
        public let rows: [Row]
        public let totalSeconds: Double

        /// Time the rows do not account for (work after the last mark).
        public var unattributedSeconds: Double { max(0, totalSeconds - rows.reduce(0) { $0 + $1.seconds }) }

        /// Rows sorted by time, as "phase  op  calls  total ms  % of total" lines.
        public func table(title: String) -> String {
            func line(_ phase: String, _ op: String, _ calls: String, _ seconds: Double) -> String {
                func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
                func left(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }
                let share = 100 * seconds / max(totalSeconds, 1e-12)
                return pad(phase, 9) + " " + pad(op, 28) + " " + left(calls, 6) + " "
                    + left(String(format: "%.2f", seconds * 1e3), 10) + " " + left(String(format: "%.1f%%", share), 7)
            }
            var lines = [String(format: "%@: %.1f ms profiled", title, totalSeconds * 1e3)]
            lines.append("phase     op                            calls   total ms  % step")
            let sorted = rows.sorted { $0.seconds != $1.seconds ? $0.seconds > $1.seconds : $0.name < $1.name }
            for r in sorted { lines.append(line(r.phase.rawValue, r.name, String(r.calls), r.seconds)) }
            for phase in [Phase.forward, .backward, .other] {
                lines.append(line(phase.rawValue, "(all)", "", rows.filter { $0.phase == phase }.reduce(0) { $0 + $1.seconds }))
            }
            lines.append(line("", "(unattributed)", "", unattributedSeconds))
            return lines.joined(separator: "\n")
        }
    }

    /// Whether `LDM_PROFILE` asks for a profile (any value but empty or "0").
    public static let requestedByEnvironment: Bool = {
        guard let v = ProcessInfo.processInfo.environment["LDM_PROFILE"] else { return false }
        return !v.isEmpty && v != "0"
    }()

    /// The single branch every hook takes when profiling is off.
    public private(set) static var isEnabled = false

    private struct Key: Hashable { let phase: Phase; let name: String }
    private static var totals: [Key: (calls: Int, nanos: UInt64)] = [:]
    private static var lastMark: UInt64 = 0
    /// Depth of `measure` regions: only the outermost is charged, and forward hooks inside
    /// one (ops a backward rule or the optimiser calls) count as that region's time.
    private static var depth = 0
    private static var owner: pthread_t?

    @inline(__always) static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    @inline(__always) private static func onOwnerThread() -> Bool {
        guard let owner else { return false }
        return pthread_equal(owner, pthread_self()) != 0
    }

    /// Runs `body` with profiling on and returns what it recorded. Not reentrant.
    public static func profile(_ body: () throws -> Void) rethrows -> Profile {
        precondition(!isEnabled, "OpProfiler.profile: already profiling")
        totals = [:]
        depth = 0
        owner = pthread_self()
        let start = now()
        lastMark = start
        isEnabled = true
        defer { isEnabled = false; owner = nil }
        try body()
        let total = Double(now() - start) / 1e9
        let rows = totals.map { Row(phase: $0.key.phase, name: $0.key.name, calls: $0.value.calls,
                                    seconds: Double($0.value.nanos) / 1e9) }
        return Profile(rows: rows, totalSeconds: total)
    }

    private static func add(_ phase: Phase, _ name: String, _ nanos: UInt64) {
        let key = Key(phase: phase, name: name)
        let old = totals[key] ?? (0, 0)
        totals[key] = (old.calls + 1, old.nanos + nanos)
    }

    /// Forward hook: charges the time since the last mark to `name`.
    @inline(never)
    static func forwardOp(_ name: String) {
        guard depth == 0, onOwnerThread() else { return }
        let t = now()
        add(.forward, name, t &- lastMark)
        lastMark = t
    }

    /// Times `body` under `name` when profiling is on; the mark moves to its end so the next
    /// forward op does not count it. Work since the previous mark goes to "(between ops)".
    @inline(__always)
    public static func measure<T>(_ phase: Phase, _ name: String, _ body: () throws -> T) rethrows -> T {
        guard isEnabled else { return try body() }
        return try measureEnabled(phase, name, body)
    }

    @inline(never)
    static func measureEnabled<T>(_ phase: Phase, _ name: String, _ body: () throws -> T) rethrows -> T {
        guard depth == 0, onOwnerThread() else { return try body() }
        let start = now()
        if start > lastMark { add(.other, "(between ops)", start - lastMark) }
        depth += 1
        defer {
            depth -= 1
            let end = now()
            add(phase, name, end - start)
            lastMark = end
        }
        return try body()
    }
}
