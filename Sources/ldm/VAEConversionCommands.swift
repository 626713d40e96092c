import ArgumentParser
import Checkpoint
import Foundation
import Models

/// `ldm import-vae`: a diffusers AutoencoderKL → our autoencoder file (usable wherever a
/// trained first stage is, e.g. to encode latents).
struct ImportVAECommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import-vae",
        abstract: "Convert a diffusers AutoencoderKL (safetensors + config.json) to an ldm autoencoder file.")

    @Option(name: .long, help: "diffusers model directory (with diffusion_pytorch_model.safetensors, or a pipeline with vae/), or the weights file.")
    var diffusers: String

    @Option(name: .long, help: "diffusers config.json (default: beside the weights).")
    var configJson: String?

    @Option(name: .long, help: "Output autoencoder (safetensors).")
    var out: String

    func run() throws {
        let (weights, config) = try DiffusersVAE.locate(URL(fileURLWithPath: diffusers),
                                                        configJSON: configJson.map { URL(fileURLWithPath: $0) })
        let (model, scalingFactor) = try DiffusersVAE.importModel(weights: weights, config: config)
        var metadata = ["ldm.imported_from": "diffusers AutoencoderKL \(weights.path)"]
        if let scalingFactor { metadata[DiffusersVAE.scalingFactorMetadataKey] = String(scalingFactor) }
        try FirstStageModel.save(.kl(model), config: model.config, step: 0, to: URL(fileURLWithPath: out),
                                 extraMetadata: metadata)
        let c = model.config
        print("import-vae: \(weights.path) → \(out): ch \(c.ch), ch_mult \(c.chMult), num_res_blocks \(c.numResBlocks), "
              + "z_channels \(c.zChannels), f = \(c.downsamplingFactor), \(model.parameterCount) parameters"
              + (scalingFactor.map { "; diffusers scaling_factor \($0) kept in the metadata" } ?? ""))
    }
}

/// `ldm export-vae`: our KL autoencoder → a diffusers AutoencoderKL directory.
struct ExportVAECommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export-vae",
        abstract: "Write an ldm KL autoencoder as a diffusers AutoencoderKL (diffusion_pytorch_model.safetensors + config.json).")

    @Option(name: .long, help: "Autoencoder file written by train-autoencoder or import-vae.")
    var autoencoder: String

    @Option(name: .long, help: "Output directory.")
    var out: String

    @Option(name: .long, help: "config.json scaling_factor (default: the imported one, else 1; use the latent diffusion model's scale_factor).")
    var scalingFactor: Double?

    func run() throws {
        let url = URL(fileURLWithPath: autoencoder)
        guard case .kl(let model) = try FirstStageModel.load(from: url) else {
            throw DiffusersVAE.ConversionError(source: autoencoder, ["a VQ autoencoder has no diffusers AutoencoderKL equivalent"])
        }
        let stored = try SafeTensors.read(url).metadata[DiffusersVAE.scalingFactorMetadataKey].flatMap(Double.init)
        let factor = scalingFactor ?? stored ?? 1
        try DiffusersVAE.export(model, scalingFactor: factor, to: URL(fileURLWithPath: out))
        print("export-vae: \(autoencoder) → \(out)/{\(DiffusersVAE.weightsFileName), \(DiffusersVAE.configFileName)} "
              + "(scaling_factor \(factor))")
    }
}
