import Checkpoint
import Foundation
import NN
import Tensor

/// The architecture of the evaluation classifier (the `model.classifier` config section).
public struct ClassifierConfig: Codable, Equatable, Sendable {
    public var inChannels = 1
    public var resolution = 32
    public var numClasses = 10
    /// Channels of each level; every level ends with a 2×2 max-pool.
    public var channels = [16, 32, 64]
    public var convsPerLevel = 2
    public var normGroups = 8
    /// Width of the fully connected layer on the flattened last level: the feature vector.
    public var featureDim = 128

    public init() {}

    enum CodingKeys: String, CodingKey {
        case resolution, channels
        case inChannels = "in_channels", numClasses = "num_classes", convsPerLevel = "convs_per_level", normGroups = "norm_groups"
        case featureDim = "feature_dim"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = ClassifierConfig()
        inChannels = try c.decodeIfPresent(Int.self, forKey: .inChannels) ?? d.inChannels
        resolution = try c.decodeIfPresent(Int.self, forKey: .resolution) ?? d.resolution
        numClasses = try c.decodeIfPresent(Int.self, forKey: .numClasses) ?? d.numClasses
        channels = try c.decodeIfPresent([Int].self, forKey: .channels) ?? d.channels
        convsPerLevel = try c.decodeIfPresent(Int.self, forKey: .convsPerLevel) ?? d.convsPerLevel
        normGroups = try c.decodeIfPresent(Int.self, forKey: .normGroups) ?? d.normGroups
        featureDim = try c.decodeIfPresent(Int.self, forKey: .featureDim) ?? d.featureDim
    }

    /// The dimension of the feature vector.
    public var featureDimension: Int { featureDim }

    /// Side of the last level's map after its pool.
    var finalResolution: Int { resolution >> channels.count }

    public func validationErrors() -> [String] {
        var errors: [String] = []
        if inChannels <= 0 { errors.append("in_channels must be positive") }
        if numClasses < 2 { errors.append("num_classes must be at least 2") }
        if channels.isEmpty || channels.contains(where: { $0 <= 0 }) { errors.append("channels must be a non-empty list of positive numbers") }
        if convsPerLevel < 1 { errors.append("convs_per_level must be at least 1") }
        if normGroups < 1 || channels.contains(where: { $0 % max(normGroups, 1) != 0 }) {
            errors.append("every entry of channels \(channels) must be divisible by norm_groups \(normGroups)")
        }
        let pools = channels.count
        if resolution <= 0 || resolution % (1 << pools) != 0 {
            errors.append("resolution \(resolution) must be divisible by 2^\(pools) (one 2×2 pool per level)")
        }
        if featureDim < 1 { errors.append("feature_dim must be positive") }
        return errors
    }
}

/// conv 3×3 → GroupNorm → SiLU.
final class ClassifierConvBlock: Module {
    let conv: Conv2d
    let norm: GroupNorm

    init(_ inChannels: Int, _ outChannels: Int, groups: Int, generator: inout RandomGenerator) {
        conv = Conv2d(inChannels, outChannels, kernelSize: 3, padding: 1, generator: &generator)
        norm = GroupNorm(groups: groups, channels: outChannels)
    }

    override func namedMembers() -> [(String, ModuleMember)] { [("conv", .module(conv)), ("norm", .module(norm))] }

    func callAsFunction(_ x: Tensor) -> Tensor { norm(conv(x)).silu() }
}

/// A small CNN trained on the data's own training split (conv levels, each ending in a 2×2
/// max-pool, then a fully connected layer on the flattened map), whose fully connected
/// activations are the feature space of the generation metrics (Fréchet distance, precision/recall) and
/// whose predictions give the class accuracy of samples and the Inception-Score-style score,
/// in place of an Inception-v3 that no package here ships.
public final class EvaluationClassifier: Module {
    public let config: ClassifierConfig
    let levels: [[ClassifierConvBlock]]
    let hidden: Linear
    let head: Linear

    public init(_ config: ClassifierConfig, generator: inout RandomGenerator) {
        self.config = config
        var levels: [[ClassifierConvBlock]] = []
        var previous = config.inChannels
        for c in config.channels {
            levels.append((0..<config.convsPerLevel).map { j in
                ClassifierConvBlock(j == 0 ? previous : c, c, groups: config.normGroups, generator: &generator)
            })
            previous = c
        }
        self.levels = levels
        let side = config.finalResolution
        hidden = Linear(previous * side * side, config.featureDim, generator: &generator)
        head = Linear(config.featureDim, config.numClasses, generator: &generator)
    }

    override public func namedMembers() -> [(String, ModuleMember)] {
        var members: [(String, ModuleMember)] = []
        for (i, level) in levels.enumerated() {
            for (j, block) in level.enumerated() { members.append(("levels.\(i).\(j)", .module(block))) }
        }
        return members + [("hidden", .module(hidden)), ("head", .module(head))]
    }

    /// Features [N, feature_dim] (the fully connected layer after SiLU) and logits [N, classes].
    public func callAsFunction(_ x: Tensor) -> (features: Tensor, logits: Tensor) {
        var h = x
        for level in levels {
            for block in level { h = block(h) }
            h = h.maxPool2d(kernel: 2, stride: 2)
        }
        let features = hidden(h.reshaped([h.shape[0], h.count / max(h.shape[0], 1)])).silu()
        return (features, head(features))
    }

    /// Mean cross-entropy of the logits against `labels`.
    public static func crossEntropy(_ logits: Tensor, labels: [Int]) -> Tensor {
        let n = logits.shape[0], c = logits.shape[1]
        precondition(labels.count == n, "one label per row")
        var oneHot = [Float](repeating: 0, count: n * c)
        for (i, y) in labels.enumerated() { oneHot[i * c + y] = 1 }
        return -(logits.logSoftmax(alongAxis: 1) * Tensor(shape: [n, c], scalars: oneHot)).sum() * (1 / Float(n))
    }

    // MARK: - Files

    public static let configMetadataKey = "ldm.classifier_config"

    /// Writes the weights with the config and `metadata` (dataset, accuracy), atomically.
    public func save(to url: URL, metadata: [String: String] = [:]) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = String(decoding: try encoder.encode(config), as: UTF8.self)
        try SafeTensors.write(stateDict(), metadata: metadata.merging([Self.configMetadataKey: json]) { $1 }, to: url)
    }

    /// A classifier written by `save` (strict), its metadata, and a fingerprint of its bytes
    /// that reports name so numbers are only compared for the same feature network.
    public static func load(from url: URL) throws -> (EvaluationClassifier, metadata: [String: String], fingerprint: String) {
        let file = try SafeTensors.read(url)
        guard let json = file.metadata[configMetadataKey] else {
            throw CheckpointLoadError(path: url.path, "no \(configMetadataKey) metadata: not an evaluation classifier written by "
                + "`ldm train-classifier`")
        }
        let config: ClassifierConfig
        do { config = try JSONDecoder().decode(ClassifierConfig.self, from: Data(json.utf8)) } catch {
            throw CheckpointLoadError(path: url.path, "\(configMetadataKey) is not a valid config: \(error)")
        }
        let problems = config.validationErrors()
        guard problems.isEmpty else { throw CheckpointLoadError(path: url.path, "invalid config: " + problems.joined(separator: "; ")) }
        var generator = RandomGenerator(seed: 0)
        let model = EvaluationClassifier(config, generator: &generator)
        do { try model.load(stateDict: try file.allTensors(), strict: true) } catch {
            throw CheckpointLoadError(path: url.path, "\(error)")
        }
        model.eval()
        let bytes = try Data(contentsOf: url, options: .alwaysMapped)
        return (model, file.metadata, XXH64.hexString(XXH64.hash(bytes)))
    }
}
