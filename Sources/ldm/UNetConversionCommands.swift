import ArgumentParser
import Checkpoint
import Foundation
import Models

/// `ldm import-unet`: a diffusers UNet2DConditionModel → a UNet-only file with our keys and
/// its config (metadata `ldm.unet_config`).
struct ImportUNetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import-unet",
        abstract: "Convert a diffusers UNet2DConditionModel (safetensors + config.json) to an ldm UNet file.")

    @Option(name: .long, help: "diffusers model directory (with diffusion_pytorch_model.safetensors, or a pipeline with unet/), or the weights file.")
    var diffusers: String

    @Option(name: .long, help: "diffusers config.json (default: beside the weights).")
    var configJson: String?

    @Option(name: .long, help: "Output UNet (safetensors, ldm keys, config in metadata ldm.unet_config).")
    var out: String

    func run() throws {
        let (weights, config) = try DiffusersUNet.locate(URL(fileURLWithPath: diffusers),
                                                         configJSON: configJson.map { URL(fileURLWithPath: $0) })
        let (model, sampleSize) = try DiffusersUNet.importModel(weights: weights, config: config)
        var metadata = ["ldm.imported_from": "diffusers UNet2DConditionModel \(weights.path)"]
        if let sampleSize { metadata[DiffusersUNet.sampleSizeMetadataKey] = String(sampleSize) }
        try DiffusersUNet.save(model, to: URL(fileURLWithPath: out), metadata: metadata)
        let c = model.config
        let heads = c.numHeads != -1 ? "num_heads \(c.numHeads)" : "num_head_channels \(c.numHeadChannels)"
        print("import-unet: \(weights.path) → \(out): model_channels \(c.modelChannels), channel_mult \(c.channelMult), "
              + "num_res_blocks \(c.numResBlocks), attention_resolutions \(c.attentionResolutions), \(heads), "
              + "transformer_depth \(c.transformerDepth), context_dim \(c.contextDim.map(String.init) ?? "none"), "
              + "num_classes \(c.numClasses.map(String.init) ?? "none"), use_scale_shift_norm \(c.useScaleShiftNorm); "
              + "\(model.parameterCount) parameters")
    }
}

/// `ldm export-unet`: the UNet of a latent diffusion model (or an imported UNet) → a diffusers
/// UNet2DConditionModel directory.
struct ExportUNetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export-unet",
        abstract: "Write the UNet of an ldm model as a diffusers UNet2DConditionModel (diffusion_pytorch_model.safetensors + config.json).")

    @Option(name: .long, help: "ldm.safetensors written by train-ldm, or a UNet file written by import-unet.")
    var ldm: String

    @Option(name: .long, help: "Output directory.")
    var out: String

    @Option(name: .long, help: "config.json sample_size (default: the imported one, else the model's latent size, else null).")
    var sampleSize: Int?

    func run() throws {
        let url = URL(fileURLWithPath: ldm)
        let (unet, metadata, latentDiffusion) = try DiffusersUNet.loadAnyUNet(from: url)
        let latentSide: Int? = metadata["ldm.latent_shape"].flatMap { text in
            let dims = text.split(separator: ",").compactMap { Int($0) }
            return dims.count == 3 && dims[1] == dims[2] ? dims[1] : nil
        }
        let size = sampleSize ?? metadata[DiffusersUNet.sampleSizeMetadataKey].flatMap { Int($0) } ?? latentSide
        try DiffusersUNet.export(unet, sampleSize: size, to: URL(fileURLWithPath: out))
        print("export-unet: \(ldm) → \(out)/{\(DiffusersUNet.weightsFileName), \(DiffusersUNet.configFileName)} "
              + "(sample_size \(size.map(String.init) ?? "null"), \(unet.parameterCount) parameters)")
        if unet.config.contextDim == nil {
            print("note: the UNet has no cross-attention context; call diffusers with encoder_hidden_states=None "
                  + "(cross_attention_dim is written as block_out_channels)")
        }
        if let model = latentDiffusion {
            var notes = ["scale_factor \(model.scaleFactor)", "parameterization \(model.config.parameterization)"]
            if model.condStageModel != nil {
                notes.append("the conditioner (cond_stage_model, key \(model.config.conditioning.key.rawValue)) is not part of the UNet "
                             + "and is not exported")
            }
            print("note: only the UNet is exported; " + notes.joined(separator: "; "))
        }
    }
}
