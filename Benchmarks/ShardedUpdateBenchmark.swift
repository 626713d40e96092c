import Distributed
import Foundation
import Models
import NN
import Tensor
import Training

/// What a data-parallel LDM step does after backward, on the benchmark UNet's 10.07 M
/// parameters, on the ranks of `mpirun -np 2 .build/release/Benchmarks sharded`: the gradient
/// allreduce, then the weight update (norm and clipping, AdamW, EMA) replicated on every rank,
/// or sharded (each rank's share, then the gather of the weights). Alternating, so both see
/// the same machine; each timing from a barrier to the slowest rank's end.
enum ShardedUpdateBenchmark {
    static func run() {
        guard let comm = RankTiming.ranks(for: "sharded") else { return }
        var g = RandomGenerator(seed: 1)
        let unet = UNetModel(UNetBenchmark.config(), generator: &g)
        let optimizer = AdamW(parameters: unet.namedParameters(), lr: 1e-4)
        let ema = ExponentialMovingAverage(model: unet)
        var rankGenerator = RandomGenerator(seed: 2 + UInt64(comm.rank))
        let grads = unet.parameters().map { Tensor.randomNormal($0.shape, generator: &rankGenerator) }
        let synchronizer = GradientSynchronizer(parameters: unet.parameters(), communicator: comm)
        do {
            guard let sharded = try ShardedWeightUpdate.make(enabled: true, optimizer: optimizer, synchronizer: synchronizer) else {
                if comm.isRoot { print("sharded: the ranks do not share a machine; the update is not sharded there") }
                return
            }
            func ms(sharding: Bool) throws -> Double {
                try RankTiming.slowestMilliseconds(comm, prepare: { for (p, gr) in zip(unet.parameters(), grads) { p.grad = gr.copy() } }) {
                    if sharding {
                        try synchronizer.synchronize(keeping: sharded.owned)
                        _ = try sharded.step(maxNorm: 1, averaging: ema, of: unet)
                    } else {
                        try synchronizer.synchronize()
                        optimizer.clipAndStep(maxNorm: 1, averaging: ema, of: unet)
                    }
                    optimizer.zeroGrad()
                }
            }
            let median = RankTiming.median
            for _ in 0..<2 { _ = try ms(sharding: false); _ = try ms(sharding: true) }
            var replicated: [Double] = [], shardedTimes: [Double] = []
            for _ in 0..<11 { replicated.append(try ms(sharding: false)); shardedTimes.append(try ms(sharding: true)) }
            guard comm.isRoot else { return }
            print(String(format: "sharded: %d ranks, %.2f M parameters, allreduce + update, median of 11: replicated %.2f ms, sharded %.2f ms (%.2fx)",
                         comm.size, Double(unet.parameterCount) / 1e6, median(replicated), median(shardedTimes),
                         median(replicated) / median(shardedTimes)))
        } catch {
            print("sharded: rank \(comm.rank): \(error)")
        }
    }
}
