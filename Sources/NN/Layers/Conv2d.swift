import Tensor

/// torch.nn.Conv2d without groups or dilation: weight [out, in, k, k], optional bias [out],
/// default init kaiming_uniform(a=√5) with fan_in = in·k·k, bias U(±1/√fan_in).
public final class Conv2d: Module, UnaryLayer {
    public let weight: Tensor
    public let bias: Tensor?
    public let stride: Int
    public let padding: Padding2D

    public init(_ inChannels: Int, _ outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                bias: Bool = true, generator: inout RandomGenerator) {
        precondition(inChannels > 0 && outChannels > 0 && kernelSize > 0 && stride > 0 && padding >= 0,
                     "Conv2d(\(inChannels), \(outChannels), kernelSize: \(kernelSize), stride: \(stride), padding: \(padding)): invalid arguments")
        let fanIn = inChannels * kernelSize * kernelSize
        weight = Initialization.kaimingUniform([outChannels, inChannels, kernelSize, kernelSize], fanIn: fanIn,
                                               generator: &generator).asParameter()
        self.bias = bias ? Initialization.fanInUniform([outChannels], fanIn: fanIn, generator: &generator).asParameter() : nil
        self.stride = stride
        self.padding = Padding2D(padding)
    }

    public var inChannels: Int { weight.shape[1] }
    public var outChannels: Int { weight.shape[0] }
    public var kernelSize: Int { weight.shape[2] }

    /// [N, in, H, W] → [N, out, H', W'].
    public func callAsFunction(_ x: Tensor) -> Tensor {
        x.conv2d(weight: weight, bias: bias, stride: stride, padding: padding)
    }

    /// With explicit (possibly asymmetric) padding, e.g. the LDM Downsample's (0, 1, 0, 1).
    public func callAsFunction(_ x: Tensor, padding: Padding2D) -> Tensor {
        x.conv2d(weight: weight, bias: bias, stride: stride, padding: padding)
    }
}
