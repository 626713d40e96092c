/// The samples of one shard in memory. Latent values are Float32 whatever the stored dtype.
public struct LatentShard: Equatable {
    /// Position of the first sample within its split (shards tile the split in order).
    public var firstSample: Int
    /// [C, h, w] of one latent.
    public var latentShape: [Int]
    public var stored: StoredLatent
    /// Each sample's index in the source dataset.
    public var datasetIndices: [Int]
    /// Class labels, −1 where the dataset has none.
    public var labels: [Int]
    /// One array per stored field (mean and log-variance, or the latent), sample-major:
    /// sample i's values are `fields[f][i * latentSize ..< (i + 1) * latentSize]`.
    public var fields: [[Float]]
    /// Optional UTF-8 caption per sample; nil when the dataset has no captions at all.
    public var captions: [String?]?

    public init(firstSample: Int, latentShape: [Int], stored: StoredLatent, datasetIndices: [Int], labels: [Int],
                fields: [[Float]], captions: [String?]? = nil) {
        let size = latentShape.reduce(1, *)
        precondition(latentShape.count == 3, "LatentShard: latent shape \(latentShape) must be [C, h, w]")
        precondition(labels.count == datasetIndices.count, "LatentShard: \(labels.count) labels for \(datasetIndices.count) samples")
        precondition(fields.count == stored.fieldCount, "LatentShard: \(fields.count) fields, \(stored.rawValue) needs \(stored.fieldCount)")
        precondition(fields.allSatisfy { $0.count == datasetIndices.count * size },
                     "LatentShard: field sizes \(fields.map(\.count)) do not match \(datasetIndices.count) samples of \(latentShape)")
        precondition(captions == nil || captions!.count == datasetIndices.count, "LatentShard: caption count differs from sample count")
        self.firstSample = firstSample
        self.latentShape = latentShape
        self.stored = stored
        self.datasetIndices = datasetIndices
        self.labels = labels
        self.fields = fields
        self.captions = captions
    }

    public var sampleCount: Int { datasetIndices.count }
    public var latentSize: Int { latentShape.reduce(1, *) }
}
