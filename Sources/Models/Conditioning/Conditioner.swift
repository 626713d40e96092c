import NN
import Tensor

/// What a batch is conditioned on, as read from the data: class labels, captions, or a
/// spatially aligned input. A conditioner takes what it needs and refuses what is missing.
public struct ConditionBatch {
    public var labels: [Int]?
    public var captions: [String]?
    /// The concatenated input at the latent grid, [B, C_c, h, w] (key concat or hybrid).
    public var spatial: Tensor?
    public let count: Int

    public init(count: Int, labels: [Int]? = nil, captions: [String]? = nil, spatial: Tensor? = nil) {
        self.count = count
        self.labels = labels
        self.captions = captions
        self.spatial = spatial
    }
}

/// What the UNet receives from a conditioner: a cross-attention context, class labels for
/// the `adm` path (a label embedding added to the time embedding), and/or a spatially aligned
/// input [B, C_c, h, w] concatenated to z_t on the channels (the reference's `concat` key).
public struct UNetConditioning {
    public var context: CrossAttentionContext?
    public var classLabels: [Int]?
    public var concat: Tensor?

    public init(context: CrossAttentionContext? = nil, classLabels: [Int]? = nil, concat: Tensor? = nil) {
        self.context = context
        self.classLabels = classLabels
        self.concat = concat
    }

    public static let none = UNetConditioning()

    /// Two conditionings stacked batch-wise (the doubled guidance batch [uncond; cond]).
    public static func concatenated(_ a: UNetConditioning, _ b: UNetConditioning) -> UNetConditioning {
        UNetConditioning(context: a.context.flatMap { ac in b.context.map { CrossAttentionContext.concatenated([ac, $0]) } },
                         classLabels: a.classLabels.flatMap { al in b.classLabels.map { al + $0 } },
                         concat: a.concat.flatMap { ac in b.concat.map { Tensor.concatenate([ac, $0], alongAxis: 0) } })
    }
}

/// τ_θ: turns a batch's conditions into what the UNet takes, trained jointly with it.
/// Class labels here; text and concatenation conditioners plug in through the same seam.
public protocol Conditioner: Module {
    /// The conditioning of `batch`; entries whose `dropped` flag is set get the null
    /// condition (classifier-free guidance training).
    func condition(_ batch: ConditionBatch, dropped: [Bool]) throws -> UNetConditioning
    /// The null condition for `count` samples (the unconditional branch of guidance).
    func unconditional(count: Int) -> UNetConditioning
}

public enum ConditionerError: Error, CustomStringConvertible, Equatable {
    case missingLabels
    case missingCaptions
    case missingSpatial
    case spatialShape([Int], count: Int, channels: Int)
    case labelOutOfRange(label: Int, position: Int, classes: Int)

    public var description: String {
        switch self {
        case .missingLabels:
            return "the model is class-conditional but the data has no class labels (a cache written without labels?)"
        case .missingCaptions:
            return "the model is text-conditional but the data has no captions (a cache written without captions?)"
        case .missingSpatial:
            return "the model concatenates a spatial condition (low-resolution image or masked image) but none was given"
        case .spatialShape(let shape, let count, let channels):
            return "the spatial condition has shape \(shape); the model takes [\(count), \(channels), h, w] "
                + "(unet.in_channels − out_channels = \(channels) condition channels)"
        case .labelOutOfRange(let label, let position, let classes):
            return "class label \(label) (sample \(position)) is outside 0..<\(classes)"
        }
    }
}
