import XCTest
@testable import Tensor

/// Records what a backward pass tells its observer, and each leaf's gradient at the moment
/// it was announced complete.
private final class RecordingObserver: BackwardObserver {
    var announcedLeaves: [ObjectIdentifier] = []
    var ready: [ObjectIdentifier] = []
    var gradientAtReady: [ObjectIdentifier: [Float]] = [:]
    var nodes = 0

    func backwardWillStart(leaves: [Tensor]) { announcedLeaves = leaves.map(ObjectIdentifier.init) }
    func gradientReady(_ leaf: Tensor) {
        ready.append(ObjectIdentifier(leaf))
        gradientAtReady[ObjectIdentifier(leaf)] = leaf.grad?.scalars
    }
    func betweenNodes() { nodes += 1 }
}

final class BackwardObserverTests: XCTestCase {
    /// Three layers, the first weight used twice; `unused` requires gradients but is not in the graph.
    func model(_ w: [Tensor], _ x: Tensor) -> Tensor {
        let h1 = x.matmul(w[0]).relu() + x.matmul(w[0]) * 0.5
        let h2 = h1.matmul(w[1]).relu()
        return (h2.matmul(w[2]) * h2.matmul(w[2])).mean()
    }

    func leaves() -> [Tensor] {
        [randn([4, 6], seed: 1), randn([6, 5], seed: 2), randn([5, 3], seed: 3)].map { t in
            t.requiresGrad = true
            return t
        }
    }

    func testEachReachedLeafIsAnnouncedOnceWithItsFinalGradientNearestTheLossFirst() {
        let x = randn([7, 4], seed: 9)
        let w = leaves(), unused = Tensor(zeros: [2], requiresGrad: true)
        _ = unused
        let observer = RecordingObserver()
        model(w, x).backward(observer: observer)

        let ids = w.map(ObjectIdentifier.init)
        XCTAssertEqual(Set(observer.announcedLeaves), Set(ids), "the leaves backward can reach, not the unused one")
        XCTAssertEqual(observer.ready, ids.reversed(), "once each, as their gradients complete: the last layer first")
        for (i, t) in w.enumerated() {
            // Complete when announced: nothing was added after (the shared weight included).
            XCTAssertEqual(observer.gradientAtReady[ObjectIdentifier(t)], t.grad?.scalars, "leaf \(i)")
        }
        XCTAssertGreaterThan(observer.nodes, 5, "told between the backward rules")
        XCTAssertNil(unused.grad)
    }

    /// Observed or not, backward accumulates the same bits (into existing gradients too).
    func testObservedBackwardAccumulatesExactlyAsThePlainOne() {
        let x = randn([7, 4], seed: 9)
        let a = leaves(), b = leaves()
        for t in [a[1], b[1]] { t.grad = randn(t.shape, seed: 5) }  // an earlier micro-batch's
        model(a, x).backward()
        let observer = RecordingObserver()
        model(b, x).backward(observer: observer)
        for (u, v) in zip(a, b) {
            let gu = try! XCTUnwrap(u.grad), gv = try! XCTUnwrap(v.grad)
            XCTAssertTrue(gu.scalars.allSatisfy(\.isFinite))
            XCTAssertEqual(gu.scalars.map(\.bitPattern), gv.scalars.map(\.bitPattern))
        }
        XCTAssertEqual(observer.gradientAtReady[ObjectIdentifier(b[1])], b[1].grad?.scalars,
                       "announced once the pass's contribution is added to the earlier gradient")
    }
}
