import CDNNL
import Foundation

/// Splits index ranges across the machine's cores.
///
/// The loops run on GNU OpenMP's thread team, the pool oneDNN's primitives and GEMM run on:
/// one set of threads for the whole step. With a second pool (GCD, OpenBLAS's pthreads) the
/// idle threads of one spin on the cores the other needs, and a 2-thread step ran barely
/// faster than a 1-thread one.
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
        onChunks(chunks) { c in
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
        onChunks(chunks) { c in
            let lo = count * c / chunks, hi = count * (c + 1) / chunks
            for i in lo..<hi { body(i) }
        }
    }

    /// Calls `body(c)` for c in `0..<chunks`, one chunk per team thread. A loop inside another
    /// parallel loop runs its chunks in turn on the calling thread (no nested team to
    /// oversubscribe the cores), and a team smaller than asked takes them in turn too: every
    /// chunk runs once, so the split, and with it every result, depends only on `chunks`.
    static func onChunks(_ chunks: Int, _ body: (Int) -> Void) {
        if omp_in_parallel() != 0 {
            for c in 0..<chunks { body(c) }
            return
        }
        withoutActuallyEscaping(body) { body in
            var region = Region(body: body, chunks: chunks)
            withUnsafeMutablePointer(to: &region) { GOMP_parallel(regionEntry, $0, UInt32(chunks), 0) }
        }
    }
}

private struct Region {
    let body: (Int) -> Void
    let chunks: Int
}

/// What each team thread runs: its share of the region's chunks.
private let regionEntry: @convention(c) (UnsafeMutableRawPointer?) -> Void = { data in
    let region = data!.assumingMemoryBound(to: Region.self).pointee
    let team = Int(omp_get_num_threads())
    var c = Int(omp_get_thread_num())
    while c < region.chunks {
        region.body(c)
        c += team
    }
}
