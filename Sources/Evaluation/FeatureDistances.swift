/// How far one image set is from another in one feature space: the Fréchet distance and
/// k-NN precision/recall, with the feature network named and fingerprinted so numbers are
/// only compared like with like.
public struct FeatureDistances: Codable, Equatable, Sendable {
    public var network: String
    public var fingerprint: String
    public var dimension: Int
    public var fd: Double
    public var precision: Double
    public var recall: Double
    public var k: Int
    /// Points of each set in the precision/recall comparison (the FD uses every image).
    public var realCount: Int
    public var generatedCount: Int

    public init(network: String, fingerprint: String, dimension: Int, fd: Double, precision: Double, recall: Double, k: Int,
                realCount: Int, generatedCount: Int) {
        self.network = network
        self.fingerprint = fingerprint
        self.dimension = dimension
        self.fd = fd
        self.precision = precision
        self.recall = recall
        self.k = k
        self.realCount = realCount
        self.generatedCount = generatedCount
    }

    enum CodingKeys: String, CodingKey {
        case network, fingerprint, dimension, fd, precision, recall, k
        case realCount = "real_count", generatedCount = "generated_count"
    }
}
