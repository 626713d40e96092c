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

    /// The model file: a run directory's ldm.safetensors (or ldm_nonema.safetensors), or the path itself.
    func modelURL() throws -> URL {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: model, isDirectory: &isDirectory) else {
            throw SampleError("--ldm \(model): no such file or directory")
        }
        guard isDirectory.boolValue else { return URL(fileURLWithPath: model) }
        guard ["ema", "trained"].contains(weights) else { throw SampleError("--weights \(weights): use ema or trained") }
        let url = URL(fileURLWithPath: model).appendingPathComponent(weights == "ema" ? "ldm.safetensors" : "ldm_nonema.safetensors")
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw SampleError("\(url.path) does not exist: has the run finished? (a checkpoints/step-N/ldm.safetensors file also works)")
        }
        return url
    }

    public func run(communicator: Communicator) throws {
        let say = { (message: String) in if communicator.isRoot { print(message); fflush(stdout) } }
        let url = try modelURL()
        let (ldm, metadata) = try LatentDiffusion.load(from: url)
        let kind: LatentDiffusionSampling.Kind
        switch sampler {
        case "ddim": kind = .ddim
        case "ddpm": kind = .ddpm
        default: throw SamplerError.unknownSampler(sampler)
        }
        if kind == .ddim { _ = try DDIMSampler(schedule: ldm.schedule, steps: steps, eta: eta) }
        guard perClass >= 1 else { throw SampleError("--n \(perClass): need at least one sample") }
        guard let shapeText = metadata["ldm.latent_shape"] else {
            throw SampleError("\(url.path): no ldm.latent_shape metadata (not written by train-ldm)")
        }
        let latentShape = shapeText.split(separator: ",").compactMap { Int($0) }

        // Labels (one row of perClass per class) or prompts (a row each).
        let conditioning = ldm.config.conditioning
        var labels: [Int]? = nil
        var captions: [String]? = nil
        if let prompts, !conditioning.isTextConditional {
            throw SampleError("--prompt \"\(prompts[0])\" given, but \(url.path) is "
                + (conditioning.isClassConditional ? "class-conditional: choose classes with --class/--classes" : "an unconditional model"))
        }
        if conditioning.isTextConditional {
            if classes != nil || classesRequested { throw SampleError("--class/--classes given, but \(url.path) is text-conditional: use --prompt \"…\"") }
            guard let prompts, !prompts.isEmpty else {
                throw SampleError("\(url.path) is text-conditional: give one or more --prompt \"…\" (a row of --n samples each)")
            }
            captions = prompts.flatMap { Array(repeating: $0, count: perClass) }
            if guidance != 1 && conditioning.ucgRate == 0 {
                say("warning: --guidance \(guidance) on a model trained without condition dropout (ucg_rate 0): its "
                    + "unconditional prediction was never trained, so guidance extrapolates from noise")
            }
        } else if let n = conditioning.numClasses, conditioning.isClassConditional {
            let ids = classes ?? Array(0..<n)
            if let bad = ids.first(where: { $0 < 0 || $0 >= n }) {
                throw SampleError("class \(bad) is out of range: the model knows classes 0..<\(n)")
            }
            labels = ids.flatMap { Array(repeating: $0, count: perClass) }
            if guidance != 1 && conditioning.ucgRate == 0 {
                say("warning: --guidance \(guidance) on a model trained without condition dropout (ucg_rate 0): its "
                    + "unconditional prediction was never trained, so guidance extrapolates from noise")
            }
        } else if classes != nil {
            throw SampleError("--class/--classes given, but \(url.path) is an unconditional model")
        }
        let total = labels?.count ?? captions?.count ?? perClass

        // The first stage, checked against the one the model was trained on.
        let firstStagePath = autoencoder ?? metadata["ldm.autoencoder_path"]
        guard let firstStagePath else { throw SampleError("--autoencoder is needed: \(url.path) records no first stage") }
        let (firstStage, actual) = try AutoencoderFingerprint.loadModel(at: URL(fileURLWithPath: firstStagePath))
        if let expected = metadata["ldm.autoencoder_fingerprint"] {
            guard actual == expected else {
                throw SampleError("--autoencoder \(firstStagePath) (fingerprint \(actual)) is not the first stage this model was "
                    + "trained on (fingerprint \(expected)): its latents mean something else")
            }
        }

        var sampling = LatentDiffusionSampling()
        sampling.kind = kind
        sampling.steps = steps
        sampling.eta = eta
        sampling.guidance = guidance
        sampling.seed = seed
        let mine = evaluationShard(count: total, rank: communicator.rank, worldSize: communicator.size)
        say("sample: \(total) image(s) from \(url.path) (\(sampler)\(kind == .ddim ? " \(steps) steps, eta \(eta)" : ""), "
            + "guidance \(guidance), seed \(seed)) on \(communicator.size) rank(s)")
        let started = ProgressReporter.now()
        let latents = try sampling.sampleLatents(ldm, latentShape: latentShape, indices: Array(mine),
                                                 labels: labels.map { Array($0[mine]) },
                                                 captions: captions.map { Array($0[mine]) }) { done, count in
            if communicator.isRoot && (done == count || done % 32 == 0) {
                let elapsed = ProgressReporter.now() - started
                say(String(format: "sample: rank 0 %d/%d | %.2f s/sample | eta %@", done, count, elapsed / Double(done),
                           ProgressReporter.duration(elapsed / Double(done) * Double(count - done))))
            }
        }
        let images = LatentDiffusionSampling.decode(latents, scaleFactor: ldm.scaleFactor, firstStage: firstStage)
        // Rank 0 gathers every rank's images, in sample order.
        let perImage = images.count / max(images.shape[0], 1)
        let gathered = try communicator.allgather(images.scalars)
        guard communicator.isRoot else { return }
        let all = gathered.flatMap { $0 }
        let imageShape = Array(images.shape.dropFirst())
        let grid = Tensor(shape: [all.count / max(perImage, 1)] + imageShape, scalars: all)
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
