import Foundation
import NN
import Tensor

/// Settings of the first stage's objective (ldm LPIPSWithDiscriminator and taming
/// VQLPIPSWithDiscriminator).
public struct AutoencoderLossConfig: Codable, Equatable, Sendable {
    public enum DiscriminatorLoss: String, Codable, Sendable { case hinge, vanilla }

    public var discStart: Int = 50_001
    public var klWeight: Float = 1e-6
    public var codebookWeight: Float = 1
    public var pixelWeight: Float = 1
    public var perceptualWeight: Float = 1
    public var discWeight: Float = 0.5
    public var discFactor: Float = 1
    public var discLoss: DiscriminatorLoss = .hinge
    public var discNumLayers: Int = 3
    public var discBaseChannels: Int = 64
    /// The output log-variance; a parameter the reference never trains, so a constant here.
    public var logvarInit: Float = 0

    public init() {}

    enum CodingKeys: String, CodingKey {
        case discStart = "disc_start", klWeight = "kl_weight", codebookWeight = "codebook_weight"
        case pixelWeight = "pixelloss_weight", perceptualWeight = "perceptual_weight"
        case discWeight = "disc_weight", discFactor = "disc_factor", discLoss = "disc_loss"
        case discNumLayers = "disc_num_layers", discBaseChannels = "disc_ndf", logvarInit = "logvar_init"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = AutoencoderLossConfig()
        discStart = try c.decodeIfPresent(Int.self, forKey: .discStart) ?? d.discStart
        klWeight = try c.decodeIfPresent(Float.self, forKey: .klWeight) ?? d.klWeight
        codebookWeight = try c.decodeIfPresent(Float.self, forKey: .codebookWeight) ?? d.codebookWeight
        pixelWeight = try c.decodeIfPresent(Float.self, forKey: .pixelWeight) ?? d.pixelWeight
        perceptualWeight = try c.decodeIfPresent(Float.self, forKey: .perceptualWeight) ?? d.perceptualWeight
        discWeight = try c.decodeIfPresent(Float.self, forKey: .discWeight) ?? d.discWeight
        discFactor = try c.decodeIfPresent(Float.self, forKey: .discFactor) ?? d.discFactor
        discLoss = try c.decodeIfPresent(DiscriminatorLoss.self, forKey: .discLoss) ?? d.discLoss
        discNumLayers = try c.decodeIfPresent(Int.self, forKey: .discNumLayers) ?? d.discNumLayers
        discBaseChannels = try c.decodeIfPresent(Int.self, forKey: .discBaseChannels) ?? d.discBaseChannels
        logvarInit = try c.decodeIfPresent(Float.self, forKey: .logvarInit) ?? d.logvarInit
    }
}

/// The regulariser's contribution to the generator loss.
public enum Regularization {
    /// KL autoencoder: the posterior.
    case kl(DiagonalGaussian)
    /// VQ autoencoder: the quantiser's loss.
    case codebook(Tensor)
}

/// L1 + LPIPS reconstruction, KL or codebook term, and a PatchGAN adversarial term with the
/// adaptive weight, as the reference's two-optimiser objective.
public final class AutoencoderLoss {
    public let config: AutoencoderLossConfig
    public let perceptual: LPIPS?
    public let discriminator: PatchDiscriminator
    /// Replaces a buffer with its mean over the data-parallel ranks, in place (nil: one rank).
    /// The adaptive weight's last-layer gradients go through it before their norms are taken,
    /// so every rank uses the weight of the whole global batch — the one a single process
    /// would compute — rather than one from its own slice (the reference under DDP). A
    /// collective: every rank computes the weight at the same steps.
    public var lastLayerGradientAverager: ((UnsafeMutableBufferPointer<Float>) -> Void)?

    public init(config: AutoencoderLossConfig, perceptual: LPIPS?, imageChannels: Int, generator: inout RandomGenerator) {
        self.config = config
        self.perceptual = perceptual
        discriminator = PatchDiscriminator(inChannels: imageChannels, baseChannels: config.discBaseChannels,
                                           layerCount: config.discNumLayers, generator: &generator)
    }

    /// disc_factor, 0 until disc_start.
    public func discriminatorFactor(step: Int) -> Float { step < config.discStart ? 0 : config.discFactor }

    public struct GeneratorOutput {
        /// The loss itself (value and graph).
        public let loss: Tensor
        /// A scalar with the same gradient as `loss` w.r.t. the autoencoder's parameters that
        /// is cheaper to differentiate (it does not pass through LPIPS or the discriminator
        /// again). Train by calling `backwardTarget.backward()`.
        public let backwardTarget: Tensor
        public var log: [String: Float]
    }

    /// The autoencoder's loss for one step. `lastLayer` is decoder.conv_out.weight.
    public func generatorLoss(inputs x: Tensor, reconstructions xr: Tensor, regularization: Regularization,
                              lastLayer: Tensor, step: Int) -> GeneratorOutput {
        let batch = Float(x.shape[0])
        // pixelloss_weight is stored but never applied by the reference; so here too.
        var rec = (x - xr).abs()
        var perceptualValue: Float = 0
        if let perceptual, config.perceptualWeight > 0 {
            let p = perceptual(x, xr).reshaped([x.shape[0], 1, 1, 1])
            perceptualValue = withoutGrad { p.mean().item }
            rec = rec + p * config.perceptualWeight
        }
        var log: [String: Float] = ["rec_loss": withoutGrad { rec.mean().item }, "p_loss": perceptualValue]
        let nll: Tensor
        var total: Tensor
        switch regularization {
        case .kl(let posterior):
            let logvar = config.logvarInit
            // nll = rec / e^logvar + logvar, summed over C, H, W and averaged over the batch.
            nll = ((rec * Foundation.exp(-logvar)) + logvar).sum() / batch
            let kl = posterior.kl().sum() / batch
            total = nll + kl * config.klWeight
            log["kl_loss"] = kl.item
        case .codebook(let qloss):
            nll = rec.mean()
            total = nll + qloss * config.codebookWeight
            log["quant_loss"] = qloss.item
        }
        log["nll_loss"] = nll.item

        // Everything but the regulariser reaches the parameters through x̂, so the gradient of
        // the loss is carried by ∂loss/∂x̂: one backward pass through LPIPS and one through the
        // discriminator give both the adaptive weight and the final gradient, instead of
        // traversing them again for every norm and for the loss.
        var gradientAtReconstruction = gradients(of: nll, wrt: [xr])[0] ?? Tensor(zeros: xr.shape)
        let factor = discriminatorFactor(step: step)
        if factor > 0 {
            let wasTraining = discriminator.parameters().first?.requiresGrad ?? true
            discriminator.freeze()  // the generator step trains the autoencoder only
            let gLoss = -discriminator(xr).mean()
            if wasTraining { discriminator.unfreeze() }
            let gGradient = gradients(of: gLoss, wrt: [xr])[0] ?? Tensor(zeros: xr.shape)
            let dWeight = adaptiveWeight(nllGradient: gradientAtReconstruction, gLossGradient: gGradient,
                                         reconstruction: xr, lastLayer: lastLayer)
            total = total + gLoss * (dWeight * factor)
            gradientAtReconstruction = gradientAtReconstruction.adding(gGradient * (dWeight * factor))
            log["g_loss"] = gLoss.item
            log["d_weight"] = dWeight
        } else {
            log["g_loss"] = 0
            log["d_weight"] = 0
        }
        log["disc_factor"] = factor
        log["total_loss"] = total.item
        // Σ x̂ ⊙ sg(∂loss/∂x̂) + regulariser has the loss's gradient w.r.t. every parameter.
        var surrogate = (xr * gradientAtReconstruction.detached()).sum()
        switch regularization {
        case .kl(let posterior): surrogate = surrogate + posterior.kl().sum() * (config.klWeight / batch)
        case .codebook(let qloss): surrogate = surrogate + qloss * config.codebookWeight
        }
        return GeneratorOutput(loss: total, backwardTarget: surrogate, log: log)
    }

    /// d_weight = clamp(‖∇_L nll‖ / (‖∇_L g_loss‖ + 1e-4), 0, 1e4) · disc_weight.
    public func adaptiveWeight(nll: Tensor, gLoss: Tensor, lastLayer: Tensor) -> Float {
        guard let nllGrad = gradients(of: nll, wrt: [lastLayer])[0],
              let gGrad = gradients(of: gLoss, wrt: [lastLayer])[0] else { return 0 }
        return adaptiveWeight(nllNorm: nllGrad, gNorm: gGrad)
    }

    /// The same weight from the two losses' gradients at x̂ = decoder output, chained through
    /// the last layer only.
    func adaptiveWeight(nllGradient: Tensor, gLossGradient: Tensor, reconstruction xr: Tensor, lastLayer: Tensor) -> Float {
        guard let nllGrad = gradients(of: xr, wrt: [lastLayer], seed: nllGradient)[0],
              let gGrad = gradients(of: xr, wrt: [lastLayer], seed: gLossGradient)[0] else { return 0 }
        return adaptiveWeight(nllNorm: nllGrad, gNorm: gGrad)
    }

    func adaptiveWeight(nllNorm nllGrad: Tensor, gNorm gGrad: Tensor) -> Float {
        var nllGrad = nllGrad, gGrad = gGrad
        if let lastLayerGradientAverager {
            // One collective for both gradients.
            let n = nllGrad.count, both = Tensor(uninitialized: [n + gGrad.count])
            both.pointer.update(from: nllGrad.pointer, count: n)
            (both.pointer + n).update(from: gGrad.pointer, count: gGrad.count)
            lastLayerGradientAverager(both.buffer)
            nllGrad = Tensor(shape: [n], scalars: Array(both.buffer[0..<n]))
            gGrad = Tensor(shape: [gGrad.count], scalars: Array(both.buffer[n...]))
        }
        let nllNorm = nllGrad.square().sumAsDouble().squareRoot()
        let gNorm = gGrad.square().sumAsDouble().squareRoot()
        let weight = min(max(nllNorm / (gNorm + 1e-4), 0), 1e4)
        return Float(weight) * config.discWeight
    }

    /// The discriminator's loss on real inputs and (detached) reconstructions.
    public func discriminatorLoss(inputs x: Tensor, reconstructions xr: Tensor, step: Int) -> (loss: Tensor, log: [String: Float]) {
        let realLogits = discriminator(x.detached())
        let fakeLogits = discriminator(xr.detached())
        let factor = discriminatorFactor(step: step)
        let d: Tensor
        switch config.discLoss {
        case .hinge:
            d = ((1 - realLogits).relu().mean() + (1 + fakeLogits).relu().mean()) * 0.5
        case .vanilla:
            d = ((-realLogits).softplus().mean() + fakeLogits.softplus().mean()) * 0.5
        }
        let loss = d * factor
        return (loss, ["disc_loss": loss.item, "logits_real": withoutGrad { realLogits.mean().item },
                       "logits_fake": withoutGrad { fakeLogits.mean().item }])
    }
}
