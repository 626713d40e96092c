import ArgumentParser
import Distributed
import Foundation
import Training

/// `ldm sample --ldm RUN [--class 7 | --classes all | --prompt "…"] --n 64 …`: images from a trained LDM.
struct SampleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Sample images from a latent diffusion model (DDIM or DDPM, classifier-free guidance).")

    @Option(name: .long, help: "The model: a train-ldm run directory (its ldm.safetensors) or a model file.")
    var ldm: String

    @Option(name: .long, help: "The first stage that decodes the latents (default: the one the model records).")
    var autoencoder: String?

    @Option(name: .customLong("class"), help: "One class id to sample.")
    var classID: Int?

    @Option(name: .long, help: "Classes to sample: `all` or a comma-separated list (class-conditional models; default all).")
    var classes: String?

    @Option(name: .long, help: "A caption for a text-conditional model (repeatable: a row of --n samples each).")
    var prompt: [String] = []

    @Option(name: .long, help: "Samples per class or prompt (in all for an unconditional model).")
    var n: Int = 8

    @Option(name: .long, help: "Sampler steps (DDIM; DDPM always runs all T).")
    var steps: Int = 50

    @Option(name: .long, help: "DDIM η (0 = deterministic).")
    var eta: Double = 0

    @Option(name: .long, help: "Classifier-free guidance scale (1 = none).")
    var guidance: Float = 3

    @Option(name: .long, help: "ddim or ddpm.")
    var sampler: String = "ddim"

    @Option(name: .long, help: "Seed: sample i draws its noise from seed and i alone.")
    var seed: UInt64 = 0

    @Option(name: .long, help: "Weights: ema (ldm.safetensors) or trained (ldm_nonema.safetensors), for a run directory.")
    var weights: String = "ema"

    @Option(name: .long, help: "Output directory.")
    var out: String = "samples"

    @Option(name: .long, help: "A super-resolution model's input: a low-resolution PNG or a folder of them.")
    var lowres: String?

    @Option(name: .long, help: "An inpainting model's image (PNG at the model's resolution).")
    var image: String?

    @Option(name: .long, help: "An inpainting model's mask (PNG, the image's size; white marks what to fill).")
    var mask: String?

    @Flag(inversion: .prefixedNo, help: "Inpainting: hold the latent cells outside the mask to the image's own latent while sampling.")
    var holdKnown = true

    func run() throws {
        let communicator = try Communicators.make()
        RankFailure.guarding("sample", communicator: communicator) {
            var request = SampleRequest(model: ldm, autoencoder: autoencoder, perClass: n, steps: steps, eta: eta,
                                        guidance: guidance, sampler: sampler, seed: seed, weights: weights,
                                        output: URL(fileURLWithPath: out))
            request.classes = try SampleRequest.parseClasses(single: classID, list: classes)
            request.classesRequested = classID != nil || classes != nil
            request.prompts = prompt.isEmpty ? nil : prompt
            request.lowres = lowres
            request.image = image
            request.mask = mask
            request.holdKnown = holdKnown
            try request.run(communicator: communicator)
        }
    }
}
