import Tensor

/// torch.nn.GroupNorm over [N, C, *]: weight 1 and bias 0 per channel when affine.
public final class GroupNorm: Module, UnaryLayer {
    public let weight: Tensor?
    public let bias: Tensor?
    public let groups: Int
    public let channels: Int
    public let eps: Float

    public init(groups: Int, channels: Int, eps: Float = 1e-5, affine: Bool = true) {
        precondition(groups > 0 && channels % groups == 0,
                     "GroupNorm: \(channels) channels cannot be split into \(groups) groups")
        weight = affine ? Tensor(repeating: 1, shape: [channels], requiresGrad: true) : nil
        bias = affine ? Tensor(zeros: [channels], requiresGrad: true) : nil
        self.groups = groups
        self.channels = channels
        self.eps = eps
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.rank >= 2 && x.shape[1] == channels, "GroupNorm(\(groups), \(channels)): input \(x.shape)")
        return x.groupNorm(groups: groups, weight: weight, bias: bias, eps: eps)
    }

    /// silu(groupNorm(x)) in one fused pass, the pair every LDM ResNet block uses.
    public func applyingSiLU(_ x: Tensor) -> Tensor {
        precondition(x.rank >= 2 && x.shape[1] == channels, "GroupNorm(\(groups), \(channels)): input \(x.shape)")
        return x.groupNormSiLU(groups: groups, weight: weight, bias: bias, eps: eps)
    }
}

/// torch.nn.LayerNorm over the last dimension: weight 1 and bias 0 when elementwise-affine.
public final class LayerNorm: Module, UnaryLayer {
    public let weight: Tensor?
    public let bias: Tensor?
    public let eps: Float

    public init(_ dimension: Int, eps: Float = 1e-5, elementwiseAffine: Bool = true) {
        precondition(dimension > 0, "LayerNorm(\(dimension)): dimension must be positive")
        weight = elementwiseAffine ? Tensor(repeating: 1, shape: [dimension], requiresGrad: true) : nil
        bias = elementwiseAffine ? Tensor(zeros: [dimension], requiresGrad: true) : nil
        self.eps = eps
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        x.layerNorm(weight: weight, bias: bias, eps: eps)
    }
}

/// torch.nn.BatchNorm2d: weight 1, bias 0; buffers running_mean 0, running_var 1 and
/// num_batches_tracked (a 0-dim tensor, as torch; Float here, exact up to 2²⁴ batches).
/// In training mode batch statistics are used and the running ones move by `momentum`;
/// in evaluation the running statistics are used. With a `statisticsReducer` (summing over
/// data-parallel ranks) it is torch.nn.SyncBatchNorm: the batch statistics, and the running
/// statistics they update, are those of every rank's samples together.
public final class BatchNorm2d: Module, UnaryLayer {
    public let weight: Tensor
    public let bias: Tensor
    @Buffer public var runningMean: Tensor
    @Buffer public var runningVar: Tensor
    @Buffer public var numBatchesTracked: Tensor
    public let eps: Float
    public let momentum: Float
    /// Sums a buffer over the ranks sharing the batch (nil: this rank's samples only). A
    /// collective: every rank must run this layer as often as the others.
    public var statisticsReducer: BatchNormStatisticsReducer?

    public init(_ channels: Int, eps: Float = 1e-5, momentum: Float = 0.1) {
        precondition(channels > 0, "BatchNorm2d(\(channels)): channels must be positive")
        weight = Tensor(repeating: 1, shape: [channels], requiresGrad: true)
        bias = Tensor(zeros: [channels], requiresGrad: true)
        runningMean = Tensor(zeros: [channels])
        runningVar = Tensor(repeating: 1, shape: [channels])
        numBatchesTracked = Tensor(zeros: [])
        self.eps = eps
        self.momentum = momentum
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.rank == 4 && x.shape[1] == weight.count, "BatchNorm2d(\(weight.count)): input \(x.shape), expected [N, \(weight.count), H, W]")
        if isTraining { numBatchesTracked.pointer[0] += 1 }
        return x.batchNorm(weight: weight, bias: bias, runningMean: runningMean, runningVar: runningVar,
                           training: isTraining, momentum: momentum, eps: eps, statisticsReducer: statisticsReducer)
    }
}
