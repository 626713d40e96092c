import Distributed
import Foundation
import Models
import Tensor

/// The blocking gradient allreduce of the benchmark UNet's 10.07 M parameters (packing, the
/// reduction and the copy back into the gradients) on the ranks of
/// `mpirun -np 2 .build/release/Benchmarks allreduce`: through MPI_Allreduce and through shared
/// memory, alternating, so both see the same machine.
enum AllreduceBenchmark {
    static func run() {
        guard let comm = RankTiming.ranks(for: "allreduce") else { return }
        var g = RandomGenerator(seed: 1 + UInt64(comm.rank))
        let unet = UNetModel(UNetBenchmark.config(), generator: &g)
        let parameters = unet.parameters()
        let grads = parameters.map { Tensor.randomNormal($0.shape, generator: &g) }
        let viaMPI = GradientSynchronizer(parameters: parameters, communicator: comm, transport: .mpi)
        let viaShared = GradientSynchronizer(parameters: parameters, communicator: comm, transport: .automatic)
        func ms(_ s: GradientSynchronizer) throws -> Double {
            try RankTiming.slowestMilliseconds(comm, prepare: { for (p, gr) in zip(parameters, grads) { p.grad = gr.copy() } }) {
                try s.synchronize()
            }
        }
        let median = RankTiming.median
        do {
            for _ in 0..<2 { _ = try ms(viaMPI); _ = try ms(viaShared) }
            var mpi: [Double] = [], shared: [Double] = []
            for _ in 0..<11 { mpi.append(try ms(viaMPI)); shared.append(try ms(viaShared)) }
            guard comm.isRoot else { return }
            let megabytes = Double(parameters.map(\.count).reduce(0, +) * 4) / 1e6
            print(String(format: "allreduce: %d ranks, %.2f M parameters (%.1f MB) in %d buckets, median of 11: MPI_Allreduce %.2f ms, %@ %.2f ms (%.2fx)",
                         comm.size, megabytes / 4, megabytes, viaMPI.buckets.count, median(mpi),
                         viaShared.reducesThroughSharedMemory ? "shared memory" : "automatic (MPI: ranks on several machines)",
                         median(shared), median(mpi) / median(shared)))
        } catch {
            print("allreduce: rank \(comm.rank): \(error)")
        }
    }
}
