import Checkpoint
import Data
import Diffusion
import Distributed
import Foundation
import LatentCache
import Models
import Tensor

/// A trained latent diffusion model as `ldm sample` and `ldm evaluate ldm` find it: the
/// model file (a run directory's EMA or trained weights, or a file), its metadata, and the
/// first stage it was trained on, checked by fingerprint.
public struct TrainedLatentDiffusion {
    public let url: URL
    public let model: LatentDiffusion
    public let metadata: [String: String]
    /// [C, h, w] of the latents the model denoises.
    public let latentShape: [Int]
    public let firstStage: FirstStageModel
    public let firstStagePath: String
    public let firstStageFingerprint: String

    /// `path`: a run directory (its ldm.safetensors for `weights` ema, ldm_nonema.safetensors
    /// for trained) or a model file. `autoencoder` overrides the recorded first stage.
    public static func load(_ path: String, weights: String = "ema", autoencoder: String? = nil) throws -> TrainedLatentDiffusion {
        let url = try modelURL(path, weights: weights)
        let (model, metadata) = try LatentDiffusion.load(from: url)
        guard let shapeText = metadata["ldm.latent_shape"] else {
            throw SampleError("\(url.path): no ldm.latent_shape metadata (not written by train-ldm)")
        }
        let latentShape = shapeText.split(separator: ",").compactMap { Int($0) }
        let firstStagePath = autoencoder ?? metadata["ldm.autoencoder_path"]
        guard let firstStagePath else { throw SampleError("--autoencoder is needed: \(url.path) records no first stage") }
        let (firstStage, actual) = try AutoencoderFingerprint.loadModel(at: URL(fileURLWithPath: firstStagePath))
        if let expected = metadata["ldm.autoencoder_fingerprint"], actual != expected {
            throw SampleError("--autoencoder \(firstStagePath) (fingerprint \(actual)) is not the first stage this model was "
                + "trained on (fingerprint \(expected)): its latents mean something else")
        }
        return TrainedLatentDiffusion(url: url, model: model, metadata: metadata, latentShape: latentShape, firstStage: firstStage,
                                      firstStagePath: firstStagePath, firstStageFingerprint: actual)
    }

    /// The model's definition alone, from its file's metadata (to choose what to run on it).
    public static func config(of path: String, weights: String = "ema") throws -> LatentDiffusionConfig {
        let url = try modelURL(path, weights: weights)
        guard let json = try SafeTensors.read(url).metadata[LatentDiffusion.configMetadataKey],
              let config = try? JSONDecoder().decode(LatentDiffusionConfig.self, from: Data(json.utf8)) else {
            throw SampleError("\(url.path): no readable \(LatentDiffusion.configMetadataKey) metadata (not written by train-ldm)")
        }
        return config
    }

    static func modelURL(_ path: String, weights: String) throws -> URL {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw SampleError("--ldm \(path): no such file or directory")
        }
        guard isDirectory.boolValue else { return URL(fileURLWithPath: path) }
        guard ["ema", "trained"].contains(weights) else { throw SampleError("--weights \(weights): use ema or trained") }
        let url = URL(fileURLWithPath: path).appendingPathComponent(weights == "ema" ? "ldm.safetensors" : "ldm_nonema.safetensors")
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw SampleError("\(url.path) does not exist: has the run finished? (a checkpoints/step-N/ldm.safetensors file also works)")
        }
        return url
    }

    /// What to condition `perClass` samples on: class labels (each class in `classes`, nil:
    /// all) for a class-conditional model, captions (a row per prompt) for a text model,
    /// neither for an unconditional one; flags that do not fit the model are refused.
    public func conditions(classes: [Int]?, classesRequested: Bool = false, prompts: [String]?,
                           perClass: Int) throws -> (labels: [Int]?, captions: [String]?) {
        let conditioning = model.config.conditioning
        if let prompts, !conditioning.isTextConditional {
            throw SampleError("--prompt \"\(prompts[0])\" given, but \(url.path) is "
                + (conditioning.isClassConditional ? "class-conditional: choose classes with --class/--classes" : "an unconditional model"))
        }
        if conditioning.isTextConditional {
            if classes != nil || classesRequested {
                throw SampleError("--class/--classes given, but \(url.path) is text-conditional: use --prompt \"…\"")
            }
            guard let prompts, !prompts.isEmpty else {
                throw SampleError("\(url.path) is text-conditional: give one or more --prompt \"…\" (a row of --n samples each)")
            }
            return (nil, prompts.flatMap { Array(repeating: $0, count: perClass) })
        }
        guard let n = conditioning.numClasses, conditioning.isClassConditional else {
            if classes != nil { throw SampleError("--class/--classes given, but \(url.path) is an unconditional model") }
            return (nil, nil)
        }
        let ids = classes ?? Array(0..<n)
        if let bad = ids.first(where: { $0 < 0 || $0 >= n }) {
            throw SampleError("class \(bad) is out of range: the model knows classes 0..<\(n)")
        }
        return (ids.flatMap { Array(repeating: $0, count: perClass) }, nil)
    }

    /// The sampler settings, checked.
    public static func sampling(sampler: String, steps: Int, eta: Double, guidance: Float, seed: UInt64,
                                schedule: NoiseSchedule) throws -> LatentDiffusionSampling {
        var sampling = LatentDiffusionSampling()
        switch sampler {
        case "ddim": sampling.kind = .ddim
        case "ddpm": sampling.kind = .ddpm
        default: throw SamplerError.unknownSampler(sampler)
        }
        sampling.steps = steps
        sampling.eta = eta
        sampling.guidance = guidance
        sampling.seed = seed
        _ = try sampling.sampler(for: schedule)
        return sampling
    }

    /// This rank's share of `count` samples (sample i from the seed and i alone, so the images
    /// do not depend on the world size), decoded to images in [−1, 1], with progress lines.
    public func sampleImages(_ sampling: LatentDiffusionSampling, count: Int, labels: [Int]?, captions: [String]? = nil,
                             communicator: Communicator,
                             say: @escaping (String) -> Void) throws -> (images: Tensor, share: Range<Int>) {
        let mine = evaluationShard(count: count, rank: communicator.rank, worldSize: communicator.size)
        let started = ProgressReporter.now()
        let latents = try sampling.sampleLatents(model, latentShape: latentShape, indices: Array(mine),
                                                 labels: labels.map { Array($0[mine]) },
                                                 captions: captions.map { Array($0[mine]) }) { done, total in
            if communicator.isRoot && (done == total || done % 32 == 0) {
                let elapsed = ProgressReporter.now() - started
                say(String(format: "sample: rank 0 %d/%d | %.2f s/sample | eta %@", done, total, elapsed / Double(done),
                           ProgressReporter.duration(elapsed / Double(done) * Double(total - done))))
            }
        }
        return (LatentDiffusionSampling.decode(latents, scaleFactor: model.scaleFactor, firstStage: firstStage), mine)
    }

    /// Every rank's images in sample order, on rank 0 (nil elsewhere). A collective.
    public static func gathered(_ images: Tensor, communicator: Communicator) throws -> Tensor? {
        let perImage = images.count / max(images.shape[0], 1)
        let parts = try communicator.allgather(images.scalars)
        guard communicator.isRoot else { return nil }
        let all = parts.flatMap { $0 }
        return Tensor(shape: [all.count / max(perImage, 1)] + Array(images.shape.dropFirst()), scalars: all)
    }
}
