import Foundation

/// Splits index ranges across the machine's cores.
public enum Parallel {
    /// Number of worker threads for non-BLAS kernels (LDM_NUM_THREADS, else all cores).
    public static var threadCount: Int = {
        if let s = ProcessInfo.processInfo.environment["LDM_NUM_THREADS"], let n = Int(s), n > 0 { return n }
        return ProcessInfo.processInfo.activeProcessorCount
    }()

    /// Calls `body` on disjoint subranges that together cover `0..<count`.
    /// Work smaller than `grain` elements per thread runs inline to avoid dispatch overhead.
    @inline(__always)
    public static func forRange(_ count: Int, grain: Int = 4096, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let chunks = min(threadCount, max(1, count / max(grain, 1)))
        if chunks <= 1 { body(0..<count); return }
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            let lo = count * c / chunks, hi = count * (c + 1) / chunks
            if lo < hi { body(lo..<hi) }
        }
    }

    /// Calls `body(i)` for every i in `0..<count`, spreading items across threads.
    /// Use when each item is a sizeable piece of work (a sample, a channel).
    @inline(__always)
    public static func forEach(_ count: Int, _ body: (Int) -> Void) {
        guard count > 0 else { return }
        if count == 1 || threadCount == 1 { for i in 0..<count { body(i) }; return }
        let chunks = min(threadCount, count)
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            let lo = count * c / chunks, hi = count * (c + 1) / chunks
            for i in lo..<hi { body(i) }
        }
    }
}
