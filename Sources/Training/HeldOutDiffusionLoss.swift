import Data
import Diffusion
import Distributed
import Foundation
import LatentCache
import Models
import Tensor

/// The diffusion loss on held-out latents, comparable across steps and runs: the first
/// `samples` latents of a split, each with its own fixed t, ε and posterior draw (from
/// RandomGenerator(seed).derived(i)), so the number is a function of the weights alone.
/// Ranks split the samples and sum exact per-bucket totals, so it does not depend on the
/// world size beyond float rounding.
public final class HeldOutDiffusionLoss {
    public struct Result: Codable, Equatable {
        public var count: Int
        /// Mean squared error of the predicted noise ε̂ (for a v-model, ε̂ from its v̂), over every element.
        public var mse: Double
        /// The same by timestep bucket: 10 equal ranges of t, from 0 to T − 1.
        public var bucketMSE: [Double]
        public var bucketCounts: [Int]

        enum CodingKeys: String, CodingKey {
            case count, mse
            case bucketMSE = "bucket_mse", bucketCounts = "bucket_counts"
        }

        public init(count: Int, mse: Double, bucketMSE: [Double], bucketCounts: [Int]) {
            self.count = count
            self.mse = mse
            self.bucketMSE = bucketMSE
            self.bucketCounts = bucketCounts
        }

        // An empty bucket has no mean: null in JSON, NaN in memory.
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            count = try c.decode(Int.self, forKey: .count)
            mse = try c.decode(Double.self, forKey: .mse)
            bucketMSE = try c.decode([Double?].self, forKey: .bucketMSE).map { $0 ?? .nan }
            bucketCounts = try c.decode([Int].self, forKey: .bucketCounts)
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(count, forKey: .count)
            try c.encode(mse, forKey: .mse)
            try c.encode(bucketMSE.map { $0.isFinite ? $0 : nil }, forKey: .bucketMSE)
            try c.encode(bucketCounts, forKey: .bucketCounts)
        }
    }

    public static let bucketCount = 10
    let reader: LatentCacheReader
    public let count: Int
    let seed: UInt64
    let batchSize: Int

    public init(cache: URL, split: String, samples: Int, seed: UInt64, batchSize: Int) throws {
        reader = try LatentCacheReader(directory: cache, split: split, globalBatchSize: 1, seed: seed, shuffle: false, dropLast: false)
        count = samples == 0 ? reader.sampleCount : min(samples, reader.sampleCount)
        guard count > 0 else {
            throw LatentCacheError.invalidOption("the \(split) split of \(cache.path) is empty: no held-out loss possible")
        }
        self.seed = seed
        self.batchSize = max(1, batchSize)
    }

    /// Collective: every rank evaluates its share and the totals are summed.
    /// `conditions` gives the conditions of a held-out batch at its split positions beyond
    /// the labels (a text model's captions, a spatial input); default: the labels.
    public func evaluate(_ model: LatentDiffusion, communicator: Communicator,
                         conditions: ((LatentBatch, [Int]) throws -> ConditionBatch)? = nil) throws -> Result {
        let T = model.schedule.timesteps
        let share = evaluationShard(count: count, rank: communicator.rank, worldSize: communicator.size)
        // [Σ error, n] per bucket, in Double so the sum is exact enough for any split.
        var totals = [Double](repeating: 0, count: 2 * Self.bucketCount)
        model.eval()
        defer { model.train() }
        // No weight changes during the pass: each is reordered once, not once a batch.
        try WeightLayoutCache.scoped { for start in stride(from: share.lowerBound, to: share.upperBound, by: batchSize) {
            let positions = Array(start..<min(start + batchSize, share.upperBound))
            let batch = try reader.batch(positions: positions)
            let batchConditions = try conditions?(batch, positions) ?? ConditionBatch(count: positions.count, labels: batch.labels)
            let shape = Array(batch.latents.shape.dropFirst()), size = shape.reduce(1, *)
            var t: [Int] = []
            let noise = Tensor(uninitialized: batch.latents.shape), posterior = Tensor(uninitialized: batch.latents.shape)
            for (k, position) in positions.enumerated() {
                var g = RandomGenerator(seed: seed).derived(UInt64(position))
                t.append(g.nextInt(below: T))
                g.fillNormal(UnsafeMutableBufferPointer(start: noise.pointer + k * size, count: size))
                g.fillNormal(UnsafeMutableBufferPointer(start: posterior.pointer + k * size, count: size))
            }
            var z = batch.latents
            if let lv = batch.logVariance { z = batch.latents + (lv * 0.5).exp() * posterior }
            let x0 = z * model.scaleFactor
            let errors = try withoutGrad { () -> [Double] in
                let xt = model.schedule.qSample(x0, timesteps: t, noise: noise)
                let c = try model.conditioning(batchConditions, dropped: [])
                let out = model.apply(xt, timesteps: t, conditioning: c)
                // Always the ε error (a v-model's output converted to ε̂), so models trained with
                // either parameterization are compared on one number.
                let eps = model.schedule.prediction(out, parameterization: model.config.parameterization, noisy: xt, timesteps: t).eps
                return perSampleSquaredError(prediction: eps, target: noise)
            }
            for (k, e) in errors.enumerated() {
                let bucket = min(Self.bucketCount - 1, t[k] * Self.bucketCount / T)
                totals[2 * bucket] += e
                totals[2 * bucket + 1] += 1
            }
        } }
        try totals.withUnsafeMutableBufferPointer { try communicator.allreduce($0, op: .sum) }
        let n = (0..<Self.bucketCount).map { totals[2 * $0 + 1] }
        let sum = (0..<Self.bucketCount).map { totals[2 * $0] }
        return Result(count: Int(n.reduce(0, +)), mse: sum.reduce(0, +) / max(n.reduce(0, +), 1),
                      bucketMSE: zip(sum, n).map { $1 > 0 ? $0 / $1 : .nan }, bucketCounts: n.map { Int($0) })
    }

    static func append(_ result: Result, step: Int, to url: URL) throws {
        var record: [String: Any] = ["step": step, "eps_mse": result.mse, "count": result.count,
                                     "bucket_counts": result.bucketCounts]
        record["bucket_mse"] = result.bucketMSE.map { $0.isFinite ? $0 as Any : NSNull() }
        let data = try JSONSerialization.data(withJSONObject: record, options: [.sortedKeys]) + Data("\n".utf8)
        if !FileManager.default.fileExists(atPath: url.path) { _ = FileManager.default.createFile(atPath: url.path, contents: nil) }
        let handle = try FileHandle(forWritingTo: url)
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: data)
    }

    /// Resuming at `step`: drops the records of later steps (written by the interrupted run
    /// after its last checkpoint; the resumed run writes them again).
    static func truncate(_ url: URL, afterStep step: Int) throws {
        guard let data = FileManager.default.contents(atPath: url.path) else { return }
        let kept = data.split(separator: UInt8(ascii: "\n")).filter { line in
            guard let record = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any],
                  let logged = (record["step"] as? NSNumber)?.intValue else { return false }
            return logged <= step
        }
        var out = Data()
        for line in kept { out.append(contentsOf: line); out.append(UInt8(ascii: "\n")) }
        guard out != data else { return }
        try out.write(to: url, options: .atomic)
    }
}
