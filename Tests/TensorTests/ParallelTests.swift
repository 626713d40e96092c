import Foundation
import XCTest
@testable import Tensor

/// `Parallel` runs its chunks on OpenMP's team: every index once, the split fixed by the
/// thread count alone, loops inside loops run in turn, and callers on several threads at once.
final class ParallelTests: XCTestCase {
    private final class Recorder: @unchecked Sendable {
        private let lock = NSLock()
        private(set) var ranges: [Range<Int>] = []
        private(set) var threads: Set<UInt> = []
        func record(_ r: Range<Int>) {
            let me = UInt(pthread_self())
            lock.lock()
            ranges.append(r)
            threads.insert(me)
            lock.unlock()
        }
    }

    private func withThreads<T>(_ n: Int, _ body: () throws -> T) rethrows -> T {
        let previous = Parallel.threadCount
        Parallel.threadCount = n
        defer { Parallel.threadCount = previous }
        return try body()
    }

    func testForRangeCoversEveryIndexOnceInTheChunksTheThreadCountFixes() {
        for threads in [1, 2, 3, 4] {
            withThreads(threads) {
                for (count, grain) in [(1, 1), (7, 1), (100, 10), (10_000, 4096), (12_345, 1000)] {
                    let recorder = Recorder()
                    Parallel.forRange(count, grain: grain) { recorder.record($0) }
                    let sorted = recorder.ranges.sorted { $0.lowerBound < $1.lowerBound }
                    let chunks = min(threads, max(1, count / grain))
                    let expected = (0..<chunks).map { c in count * c / chunks..<count * (c + 1) / chunks }.filter { !$0.isEmpty }
                    XCTAssertEqual(sorted, expected, "threads \(threads), count \(count), grain \(grain)")
                }
            }
        }
    }

    func testForRangeRunsOnMoreThanOneThread() throws {
        try XCTSkipIf(ProcessInfo.processInfo.activeProcessorCount < 2, "one core")
        withThreads(2) {
            let recorder = Recorder()
            // Chunks long enough that the second thread is sure to join.
            Parallel.forRange(2, grain: 1) { r in recorder.record(r); usleep(20_000) }
            XCTAssertEqual(recorder.threads.count, 2)
        }
    }

    func testALoopInsideALoopRunsEveryPairOnceOnItsCallingThread() {
        withThreads(2) {
            let lock = NSLock()
            var seen: [Int: Int] = [:]
            var innerOnOtherThread = false
            Parallel.forEach(6) { i in
                let outer = pthread_self()
                Parallel.forEach(5) { j in
                    lock.lock()
                    seen[i * 5 + j, default: 0] += 1
                    if pthread_equal(outer, pthread_self()) == 0 { innerOnOtherThread = true }
                    lock.unlock()
                }
            }
            XCTAssertEqual(seen.count, 30)
            XCTAssertTrue(seen.values.allSatisfy { $0 == 1 })
            XCTAssertFalse(innerOnOtherThread, "a nested loop must not start a team of its own")
        }
    }

    func testCallersOnSeveralThreadsAtOnceEachGetTheirWholeLoop() {
        withThreads(2) {
            let n = 50_000
            final class Sums: @unchecked Sendable {
                let lock = NSLock()
                var byCaller: [Int: Double] = [:]
            }
            let sums = Sums()
            let group = DispatchGroup()
            for t in 0..<4 {
                group.enter()
                Thread {
                    var values = [Double](repeating: 0, count: n)
                    values.withUnsafeMutableBufferPointer { v in
                        Parallel.forRange(n, grain: 1000) { r in for i in r { v[i] = Double(i + t) } }
                    }
                    let total = values.reduce(0, +)
                    sums.lock.lock()
                    sums.byCaller[t] = total
                    sums.lock.unlock()
                    group.leave()
                }.start()
            }
            group.wait()
            for t in 0..<4 {
                XCTAssertEqual(sums.byCaller[t], Double(n) * Double(n - 1) / 2 + Double(n * t), "caller \(t)")
            }
        }
    }
}
