@testable import Models

/// The small two-level UNet the conditioning tests build (32 channels, attention at rate 2,
/// 16-channel heads, 2 latent channels out); each test sets its conditioning on top.
func tinyLatentDiffusionConfig(inChannels: Int) -> LatentDiffusionConfig {
    var c = LatentDiffusionConfig()
    c.unet.inChannels = inChannels
    c.unet.outChannels = 2
    c.unet.modelChannels = 32
    c.unet.channelMult = [1, 1]
    c.unet.numResBlocks = 1
    c.unet.attentionResolutions = [2]
    c.unet.numHeadChannels = 16
    return c
}
