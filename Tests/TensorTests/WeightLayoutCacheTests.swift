import Foundation
import XCTest
@testable import Tensor
import TestSupport

/// Convolutions reading their weights through a `WeightLayoutCache`: the same bits as without
/// one, one reorder per weight and layout while the cache holds, the new weights after `clear()`.
final class WeightLayoutCacheTests: XCTestCase {
    override func setUpWithError() throws {
        XCTAssertTrue(ComputeBackends.oneDNNAvailable, "oneDNN must run here (Launch/setup.sh installs libdnnl-dev)")
    }

    /// Output, input gradient and weight gradient of a 32 → 16 conv (channels oneDNN blocks on
    /// every x86 ISA it has), the weight's gradient cleared after.
    func convPass(_ x: Tensor, _ w: Tensor, _ b: Tensor, seed: UInt64) -> [Tensor] {
        let y = x.conv2d(weight: w, bias: b, stride: 1, padding: Padding2D(1))
        (y * randn(y.shape, seed: seed)).sum().backward()
        defer { x.grad = nil; w.grad = nil; b.grad = nil }
        return [y.detached(), x.grad!, w.grad!, b.grad!]
    }

    func inputs() -> (Tensor, Tensor, Tensor) {
        let x = randn([2, 32, 6, 5], seed: 41), w = randn([16, 32, 3, 3], seed: 42, scale: 0.3), b = randn([16], seed: 43)
        for t in [x, w, b] { t.requiresGrad = true }
        return (x, w, b)
    }

    func assertSameBits(_ a: [Tensor], _ b: [Tensor], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, file: file, line: line)
        for (s, t) in zip(a, b) {
            XCTAssertTrue(s.scalars.allSatisfy(\.isFinite), "non-finite values", file: file, line: line)
            XCTAssertEqual(s.scalars.map(\.bitPattern), t.scalars.map(\.bitPattern), file: file, line: line)
        }
    }

    func testCachedWeightsGiveTheSameBitsAndAreReorderedOncePerLayout() {
        ComputeBackends.withBackend("onednn") {
            let (x, w, b) = inputs()
            let plain = convPass(x, w, b, seed: 44)
            let cache = WeightLayoutCache()
            let first = cache.during { convPass(x, w, b, seed: 44) }
            let second = cache.during { convPass(x, w, b, seed: 44) }
            assertSameBits(first, plain)
            assertSameBits(second, plain)
            #if arch(x86_64)
            // The forward's layout and the input gradient's: two reorders, then both reused.
            XCTAssertEqual(cache.reorders, 2)
            XCTAssertEqual(cache.reuses, 2)
            #endif
        }
    }

    /// The backward reads the cache its forward ran with, even when it runs outside `during`.
    func testBackwardUsesTheForwardsCache() {
        ComputeBackends.withBackend("onednn") {
            let (x, w, b) = inputs()
            let plain = convPass(x, w, b, seed: 45)
            let cache = WeightLayoutCache()
            let y = cache.during { x.conv2d(weight: w, bias: b, stride: 1, padding: Padding2D(1)) }
            let readsBeforeBackward = cache.reorders
            (y * randn(y.shape, seed: 45)).sum().backward()
            assertSameBits([y.detached(), x.grad!, w.grad!, b.grad!], plain)
            #if arch(x86_64)
            XCTAssertEqual(cache.reorders, readsBeforeBackward + 1, "the input gradient's layout")
            #endif
        }
    }

    func testClearingPicksUpChangedWeights() {
        ComputeBackends.withBackend("onednn") {
            let (x, w, b) = inputs()
            let cache = WeightLayoutCache()
            _ = cache.during { convPass(x, w, b, seed: 46) }
            w.assign(randn(w.shape, seed: 47, scale: 0.3))
            cache.clear()
            let cached = cache.during { convPass(x, w, b, seed: 46) }
            assertSameBits(cached, convPass(x, w, b, seed: 46))
            let original = randn(w.shape, seed: 42, scale: 0.3)
            original.requiresGrad = true
            XCTAssertNotEqual(cached[0].scalars, convPass(x, original, b, seed: 46)[0].scalars, "not the first weights' copy")
        }
    }

    /// What the reuse check (LDM_CHECK_WEIGHT_CACHE=1) compares: a weight written after it was
    /// staged no longer matches the copy taken then.
    func testAWeightWrittenAfterStagingIsDetected() {
        let w = randn([16, 32, 3, 3], seed: 48)
        let original = w.scalars
        XCTAssertFalse(WeightLayoutCache.differs(w.storage, from: original))
        w.pointer[w.count - 1] += 1
        XCTAssertTrue(WeightLayoutCache.differs(w.storage, from: original))
    }

    func testTheSuiteChecksReuse() {
        XCTAssertTrue(WeightLayoutCache.checksReuse, "Launch/test.sh sets \(WeightLayoutCache.checkVariable)=1")
    }

    func testACacheIsInEffectOnlyOnItsThreadAndInsideDuring() {
        let cache = WeightLayoutCache()
        XCTAssertNil(WeightLayoutCache.current)
        cache.during {
            XCTAssertTrue(WeightLayoutCache.current === cache)
            let inner = WeightLayoutCache()
            inner.during { XCTAssertTrue(WeightLayoutCache.current === inner) }
            XCTAssertTrue(WeightLayoutCache.current === cache)
            let seen = SeenOnAnotherThread()
            let done = DispatchSemaphore(value: 0)
            Thread { seen.ran = true; seen.cache = WeightLayoutCache.current; done.signal() }.start()
            done.wait()
            XCTAssertTrue(seen.ran, "the thread ran")
            XCTAssertNil(seen.cache, "another thread runs without this thread's cache")
        }
        XCTAssertNil(WeightLayoutCache.current)
    }

    /// What the other thread saw, handed back after the semaphore.
    final class SeenOnAnotherThread: @unchecked Sendable {
        var ran = false
        var cache: WeightLayoutCache?
    }

    /// Nothing to keep on OpenBLAS: the cache is handed over and left empty.
    func testOpenBLASReadsWeightsAsTheyAre() {
        ComputeBackends.withBackend("openblas") {
            let (x, w, b) = inputs()
            let cache = WeightLayoutCache()
            assertSameBits(cache.during { convPass(x, w, b, seed: 49) }, convPass(x, w, b, seed: 49))
            XCTAssertEqual(cache.reorders, 0)
        }
    }
}
