import Tensor

/// The random inputs of one diffusion training micro-batch: timesteps, noise and which
/// samples have their condition dropped (for classifier-free guidance).
///
/// Drawn for the whole global batch from one stream that every rank advances identically,
/// then sliced by rank, so sample i of a global batch gets the same t, ε and drop decision
/// whether one process or N ranks train (as the first stage's posterior noise).
public struct TrainingDraws {
    public let timesteps: [Int]
    public let noise: Tensor
    public let dropCondition: [Bool]

    /// - Parameters: `sampleShape` is one latent's shape; `slice` this rank's part of the
    ///   global batch (index, count); `dropProbability` the condition dropout rate.
    public static func draw(globalBatch: Int, sampleShape: [Int], slice: (index: Int, count: Int),
                            timesteps total: Int, dropProbability: Double,
                            generator: inout RandomGenerator) -> TrainingDraws {
        precondition(globalBatch % slice.count == 0, "global batch \(globalBatch) does not split into \(slice.count) ranks")
        let per = globalBatch / slice.count, first = slice.index * per
        let size = sampleShape.reduce(1, *)
        var t: [Int] = [], drop: [Bool] = []
        for _ in 0..<globalBatch { t.append(generator.nextInt(below: total)) }
        for _ in 0..<globalBatch { drop.append(dropProbability > 0 && generator.nextUniformDouble() < dropProbability) }
        let all = Tensor.randomNormal([globalBatch * size], generator: &generator)
        let noise = Tensor(uninitialized: [per] + sampleShape)
        noise.pointer.update(from: all.pointer + first * size, count: per * size)
        return TrainingDraws(timesteps: Array(t[first..<first + per]), noise: noise,
                             dropCondition: Array(drop[first..<first + per]))
    }
}
