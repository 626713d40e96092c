import TestSupport
import XCTest
@testable import Tensor

final class OpProfilerTests: XCTestCase {
    private func row(_ p: OpProfiler.Profile, _ phase: OpProfiler.Phase, _ name: String) -> OpProfiler.Row? {
        p.rows.first { $0.phase == phase && $0.name == name }
    }

    func testCountsForwardAndBackwardOpsOfAStep() {
        let w = randn([16, 16], seed: 1)
        w.requiresGrad = true
        let x = randn([8, 16], seed: 2)
        let profile = OpProfiler.profile {
            let h = x.matmul(w).silu()
            let loss = (h.matmul(w) + h).sum()
            loss.backward()
            OpProfiler.measure(.other, "update") { w.grad?.scaleInPlace(0.5) }
        }
        XCTAssertFalse(OpProfiler.isEnabled, "profiling must end with the profiled body")
        XCTAssertEqual(row(profile, .forward, "matmul")?.calls, 2)
        XCTAssertEqual(row(profile, .forward, "silu")?.calls, 1)
        XCTAssertEqual(row(profile, .forward, "add")?.calls, 1)
        XCTAssertEqual(row(profile, .forward, "sum")?.calls, 1)
        XCTAssertEqual(row(profile, .backward, "matmul")?.calls, 2)
        XCTAssertEqual(row(profile, .backward, "silu")?.calls, 1)
        XCTAssertEqual(row(profile, .backward, "sum")?.calls, 1)
        // h and w each feed two consumers: two gradients are accumulated.
        XCTAssertEqual(row(profile, .backward, "(accumulate grads)")?.calls, 2)
        XCTAssertEqual(row(profile, .other, "update")?.calls, 1)
        // Rows never add up to more than the wall time they were cut from.
        let attributed = profile.rows.reduce(0) { $0 + $1.seconds }
        XCTAssertTrue(profile.totalSeconds > 0 && attributed.isFinite)
        XCTAssertLessThanOrEqual(attributed, profile.totalSeconds * (1 + 1e-9))
        let table = profile.table(title: "test")
        XCTAssertTrue(table.contains("matmul") && table.contains("(unattributed)"), table)
    }

    func testOpsInsideAMeasuredRegionAreThatRegionsTime() {
        let a = randn([4, 4], seed: 3)
        a.requiresGrad = true
        let profile = OpProfiler.profile {
            _ = OpProfiler.measure(.other, "region") { (a * a).sum() }
        }
        XCTAssertNil(row(profile, .forward, "mul"), "an op inside a measured region is not charged twice")
        XCTAssertEqual(row(profile, .other, "region")?.calls, 1)
    }

    func testRecordsNothingWhenOffOrOnAnotherThread() {
        let a = randn([4, 4], seed: 4)
        a.requiresGrad = true
        _ = (a * a).sum()   // not profiling: must not leak into the next profile
        let profile = OpProfiler.profile {
            let done = DispatchSemaphore(value: 0)
            Thread.detachNewThread { _ = (a + a).sum(); done.signal() }
            done.wait()
            _ = a.silu()
        }
        XCTAssertEqual(profile.rows.filter { $0.phase == .forward }.map(\.name), ["silu"])
    }
}
