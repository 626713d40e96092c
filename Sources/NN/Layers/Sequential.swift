import Tensor

/// A layer with one input and one output, so it can be chained.
public protocol UnaryLayer: Module {
    func callAsFunction(_ x: Tensor) -> Tensor
}

/// Layers applied in order, named "0", "1", … as torch.nn.Sequential.
public final class Sequential: Module, UnaryLayer {
    public let layers: [any UnaryLayer]

    public init(_ layers: [any UnaryLayer]) {
        self.layers = layers
    }

    public convenience init(_ layers: any UnaryLayer...) { self.init(layers) }

    override public func namedMembers() -> [(String, ModuleMember)] {
        layers.enumerated().map { ("\($0.offset)", .module($0.element)) }
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        layers.reduce(x) { $1($0) }
    }
}
