import Distributed
import Foundation

/// Timing for benchmarks run on several ranks (`mpirun -np 2 .build/release/Benchmarks NAME`).
enum RankTiming {
    /// The job's communicator, or nil (having said why) when it cannot run or has one rank.
    static func ranks(for name: String) -> Communicator? {
        let comm: Communicator
        do { comm = try Communicators.make() } catch { print("\(name): \(error)"); return nil }
        guard comm.size > 1 else {
            print("\(name): needs several ranks (mpirun -np 2 .build/release/Benchmarks \(name))")
            return nil
        }
        return comm
    }

    /// Milliseconds of `body` from a barrier (after `prepare`) to the slowest rank's end, so no
    /// rank's wait is hidden. A collective.
    static func slowestMilliseconds(_ comm: Communicator, prepare: () -> Void = {}, _ body: () throws -> Void) throws -> Double {
        prepare()
        try comm.barrier()
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        let mine = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        return try comm.allreduce(mine, op: .max)
    }

    static func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }
}
