import Checkpoint
import Data
import Diffusion
import Distributed
import Foundation
import LatentCache
import Models
import Tensor

public struct SampleError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// What `ldm sample` does: load a model and its first stage, sample (ranks split the
/// samples; sample i depends only on the seed and i), decode, and write a grid with a row per
/// class, one PNG per sample with its class in the name, and samples.safetensors.
public struct SampleRequest {
    public var model: String
    public var autoencoder: String?
    /// Class ids to sample (nil: all classes of a class-conditional model).
    public var classes: [Int]?
    /// Whether --class/--classes was given at all (`--classes all` leaves `classes` nil).
    public var classesRequested = false
    /// Captions for a text-conditional model: a row of perClass samples each.
    public var prompts: [String]?
    public var perClass: Int
    public var steps: Int
    public var eta: Double
    public var guidance: Float
    public var sampler: String
    public var seed: UInt64
    public var weights: String
    public var output: URL
    /// A super-resolution model's inputs: a low-resolution PNG or a folder of them.
    public var lowres: String?
    /// An inpainting model's image and mask (white: fill).
    public var image: String?
    public var mask: String?
    /// Inpainting: hold the latent cells the mask leaves untouched to the image's latent.
    public var holdKnown = true

    public init(model: String, autoencoder: String?, perClass: Int, steps: Int, eta: Double, guidance: Float,
                sampler: String, seed: UInt64, weights: String, output: URL) {
        self.model = model
        self.autoencoder = autoencoder
        self.perClass = perClass
        self.steps = steps
        self.eta = eta
        self.guidance = guidance
        self.sampler = sampler
        self.seed = seed
        self.weights = weights
        self.output = output
    }

    /// `--class 7` or `--classes all|1,2,3`.
    public static func parseClasses(single: Int?, list: String?) throws -> [Int]? {
        if let single {
            guard list == nil else { throw SampleError("give --class or --classes, not both") }
            return [single]
        }
        guard let list, list != "all" else { return nil }
        let parts = list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        let ids = parts.compactMap { Int($0) }
        guard ids.count == parts.count, !ids.isEmpty else {
            throw SampleError("--classes '\(list)': expected `all` or a comma-separated list of class ids")
        }
        return ids
    }

    public func run(communicator: Communicator) throws {
        let say = { (message: String) in if communicator.isRoot { print(message); fflush(stdout) } }
        let trained = try TrainedLatentDiffusion.load(model, weights: weights, autoencoder: autoencoder)
        let ldm = trained.model, url = trained.url
        try checkSpatialFlags(trained)
        if ldm.config.conditioning.usesConcat { return try runSpatial(trained, communicator: communicator, say: say) }
        let sampling = try TrainedLatentDiffusion.sampling(sampler: sampler, steps: steps, eta: eta, guidance: guidance, seed: seed,
                                                           schedule: ldm.schedule)
        guard perClass >= 1 else { throw SampleError("--n \(perClass): need at least one sample") }
        // Labels (one row of perClass per class) or prompts (a row each).
        let (labels, captions) = try trained.conditions(classes: classes, classesRequested: classesRequested, prompts: prompts,
                                                        perClass: perClass)
        if (labels != nil || captions != nil) && guidance != 1 && ldm.config.conditioning.ucgRate == 0 {
            say("warning: --guidance \(guidance) on a model trained without condition dropout (ucg_rate 0): its "
                + "unconditional prediction was never trained, so guidance extrapolates from noise")
        }
        let total = labels?.count ?? captions?.count ?? perClass
        let kind = sampling.kind
        say("sample: \(total) image(s) from \(url.path) (\(sampler)\(kind == .ddim ? " \(steps) steps, eta \(eta)" : ""), "
            + "guidance \(guidance), seed \(seed)) on \(communicator.size) rank(s)")
        let started = ProgressReporter.now()
        let (images, _) = try trained.sampleImages(sampling, count: total, labels: labels, captions: captions,
                                                   communicator: communicator, say: say)
        guard let grid = try TrainedLatentDiffusion.gathered(images, communicator: communicator) else { return }
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let gridURL = output.appendingPathComponent("grid.png")
        try ImageGrid.write(ImageGrid.enlarged(grid, minimumWidth: 600, columns: perClass), to: gridURL, columns: perClass)
        for i in 0..<grid.shape[0] {
            let name = labels.map { String(format: "sample_%04d_class%d.png", i, $0[i]) }
                ?? (captions != nil ? String(format: "sample_%04d_prompt%d.png", i, i / perClass) : String(format: "sample_%04d.png", i))
            try PNG.write(ImageGrid.make(grid.slice(alongAxis: 0, i..<i + 1), columns: 1, padding: 0),
                          to: output.appendingPathComponent(name))
        }
        var tensors = ["images": grid]
        if let labels { tensors["labels"] = Tensor(shape: [labels.count], scalars: labels.map(Float.init)) }
        var sampleMetadata = ["ldm.model": url.path, "ldm.sampler": sampler, "ldm.steps": String(steps),
                              "ldm.eta": String(eta), "ldm.guidance": String(guidance), "ldm.seed": String(seed)]
        if let prompts {
            sampleMetadata["ldm.prompts"] = String(decoding: try JSONSerialization.data(withJSONObject: prompts), as: UTF8.self)
        }
        try SafeTensors.write(tensors, metadata: sampleMetadata, to: output.appendingPathComponent("samples.safetensors"))
        say(String(format: "sample: wrote %@ (%@), %d PNGs and samples.safetensors in %.1f s", gridURL.path,
                   labels != nil ? "a row per class" : captions != nil ? "a row per prompt" : "\(perClass) per row", grid.shape[0], ProgressReporter.now() - started))
    }
}
