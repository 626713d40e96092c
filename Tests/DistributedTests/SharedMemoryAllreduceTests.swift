import XCTest
@testable import Distributed

final class SharedMemoryAllreduceTests: XCTestCase {
    func testSlicesCoverEveryElementOnceAtCacheLineBoundaries() {
        for size in 1...5 {
            for count in [0, 1, 15, 16, 17, 100, 1000, 4099] {
                let slices = (0..<size).map { SharedMemoryAllreduce.slice(of: count, rank: $0, size: size) }
                XCTAssertEqual(slices.first?.lowerBound, 0, "size \(size) count \(count)")
                XCTAssertEqual(slices.last?.upperBound, count, "size \(size) count \(count)")
                for (s, t) in zip(slices, slices.dropFirst()) {
                    XCTAssertEqual(s.upperBound, t.lowerBound, "size \(size) count \(count): \(slices)")
                }
                for s in slices.dropFirst() where s.lowerBound < count {
                    XCTAssertEqual(s.lowerBound % 16, 0, "size \(size) count \(count): \(slices)")
                }
            }
        }
    }

    /// The sum runs in rank order, then one division: the bits of a sequential loop.
    func testAverageSumsInRankOrderThenDivides() {
        for ranks in 2...5 {
            let n = 37
            var inputs: [[Float]] = (0..<ranks).map { q in (0..<n).map { Float(q + 1) * 0.1 + Float($0) * 1e-7 + (q == 2 ? 1e8 : 0) } }
            inputs[ranks - 1][5] = .nan
            let pointers = inputs.map { a -> UnsafeMutablePointer<Float> in
                let p = UnsafeMutablePointer<Float>.allocate(capacity: n)
                p.initialize(from: a, count: n)
                return p
            }
            defer { pointers.forEach { $0.deallocate() } }
            var out = [Float](repeating: -1, count: n)
            out.withUnsafeMutableBufferPointer { o in
                SharedMemoryAllreduce.average(pointers.map { UnsafePointer($0) }, into: o.baseAddress!, range: 3..<n,
                                              divisor: Float(ranks))
            }
            for i in 0..<n {
                guard i >= 3 else { XCTAssertEqual(out[i], -1, "outside the range"); continue }
                var s = inputs[0][i]
                for q in 1..<ranks { s += inputs[q][i] }
                let expected = s / Float(ranks)
                if i == 5 { XCTAssertTrue(out[i].isNaN, "\(ranks) ranks: a NaN contribution gives NaN"); continue }
                XCTAssertTrue(out[i].isFinite, "\(ranks) ranks, element \(i): \(out[i])")
                XCTAssertEqual(out[i].bitPattern, expected.bitPattern, "\(ranks) ranks, element \(i)")
            }
        }
    }

    func testOneProcessHasNoSharedMemory() throws {
        XCTAssertNil(try SingleProcessCommunicator().sharedMemory(bytes: 64))
    }

    func testTransportComesFromTheEnvironment() throws {
        XCTAssertEqual(try AllreduceTransport.fromEnvironment([:]), .automatic)
        XCTAssertEqual(try AllreduceTransport.fromEnvironment(["LDM_ALLREDUCE": ""]), .automatic)
        XCTAssertEqual(try AllreduceTransport.fromEnvironment(["LDM_ALLREDUCE": "auto"]), .automatic)
        XCTAssertEqual(try AllreduceTransport.fromEnvironment(["LDM_ALLREDUCE": "mpi"]), .mpi)
        XCTAssertThrowsError(try AllreduceTransport.fromEnvironment(["LDM_ALLREDUCE": "nccl"])) { error in
            XCTAssertEqual("\(error)", "LDM_ALLREDUCE=nccl is not a transport; use one of auto, mpi")
        }
    }
}
