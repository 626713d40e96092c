import Checkpoint
import Data
import Diffusion
import Distributed
import Foundation
import Models
import Tensor

/// `ldm sample` for super-resolution (`--lowres IMAGE|DIR`) and inpainting (`--image IMAGE
/// --mask MASK.png`) models.
extension SampleRequest {
    /// Refuses flags that do not fit the model.
    func checkSpatialFlags(_ trained: TrainedLatentDiffusion) throws {
        let task = trained.model.config.conditioning.usesConcat ? trained.model.config.conditioning.spatial?.task : nil
        let path = trained.url.path
        if lowres != nil && task != .superResolution {
            throw SampleError("--lowres given, but \(path) is not a super-resolution model" + (task == .inpainting ? " (it inpaints: --image and --mask)" : ""))
        }
        if (image != nil || mask != nil) && task != .inpainting {
            throw SampleError("--image/--mask given, but \(path) is not an inpainting model" + (task == .superResolution ? " (it upsamples: --lowres)" : ""))
        }
        switch task {
        case .superResolution?:
            guard lowres != nil else { throw SampleError("\(path) is a super-resolution model: give --lowres IMAGE.png or a folder of PNGs") }
        case .inpainting?:
            guard image != nil, mask != nil else { throw SampleError("\(path) is an inpainting model: give --image IMAGE.png and --mask MASK.png (white: fill)") }
        case nil: break
        }
    }

    /// The PNGs of `path`: the file, or a folder's *.png in name order.
    static func pngFiles(_ path: String) throws -> [URL] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw SampleError("\(path): no such file or directory") }
        guard isDirectory.boolValue else { return [URL(fileURLWithPath: path)] }
        let files = try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.lowercased().hasSuffix(".png") }.sorted()
        guard !files.isEmpty else { throw SampleError("\(path) holds no .png files") }
        return files.map { URL(fileURLWithPath: path).appendingPathComponent($0) }
    }

    /// A user's image, refused when its channels are not the model's (a colour file for a grey
    /// model, or the other way round) rather than silently converted.
    static func readInput(_ url: URL, channels: Int) throws -> Image8 {
        let image = try PNG.read(url)
        guard image.channels == channels else {
            throw SampleError("\(url.path) is a \(image.channels == 3 ? "colour" : "grey") image (\(image.channels) channel(s)); the model "
                + "takes \(channels == 3 ? "colour" : "grey") images (\(channels) channel(s)): convert it first")
        }
        return image
    }

    func runSpatial(_ trained: TrainedLatentDiffusion, communicator: Communicator, say: @escaping (String) -> Void) throws {
        let ldm = trained.model, conditioning = ldm.config.conditioning, spatial = conditioning.spatial!
        let first = trained.firstStage.config
        let (side, channels) = (first.resolution, first.inChannels)
        let sampling = try TrainedLatentDiffusion.sampling(sampler: sampler, steps: steps, eta: eta, guidance: guidance, seed: seed,
                                                           schedule: ldm.schedule)
        // Inputs, each sample's condition, and what goes beside the outputs in the grid.
        var names: [String] = [], condition: Tensor, shown: Tensor, original: Tensor?, masks: [InpaintingMask]?, known: KnownLatents?
        switch spatial.task {
        case .superResolution:
            let (low, lowSide) = (try Self.pngFiles(lowres!), side / spatial.factor)
            var images: [Image8] = []
            for url in low {
                let img = try Self.readInput(url, channels: channels)
                guard img.width == lowSide && img.height == lowSide else {
                    throw SampleError("\(url.path) is \(img.width)×\(img.height); the model upsamples \(lowSide)×\(lowSide) images ×\(spatial.factor) "
                        + "to \(side)×\(side)")
                }
                images.append(img)
                names.append(url.deletingPathExtension().lastPathComponent)
            }
            condition = try SpatialInputs.superResolution(images, latentShape: trained.latentShape, channels: channels)
            shown = SpatialInputs.tensor(images.map { $0.resized(width: side, height: side, filter: .bicubic) })
        case .inpainting:
            let imageURL = URL(fileURLWithPath: image!), maskURL = URL(fileURLWithPath: mask!)
            let img = try Self.readInput(imageURL, channels: channels)
            guard img.width == side && img.height == side else {
                throw SampleError("\(imageURL.path) is \(img.width)×\(img.height); the model inpaints \(side)×\(side) images")
            }
            let maskImage = try PNG.read(maskURL, channels: 1)
            guard maskImage.width == img.width && maskImage.height == img.height else {
                throw SampleError("\(maskURL.path) is \(maskImage.width)×\(maskImage.height), the image \(imageURL.path) is \(img.width)×\(img.height): "
                    + "the mask must have the image's size")
            }
            let m = InpaintingMask(image: maskImage)
            guard m.coverage > 0 else { throw SampleError("\(maskURL.path) marks no pixel to fill (white, ≥ 128, is filled)") }
            let x = SpatialInputs.tensor(Array(repeating: img, count: perClass))
            masks = Array(repeating: m, count: perClass)
            names = (0..<perClass).map { String(format: "inpainted_%02d", $0) }
            condition = SpatialInputs.inpainting(images: x, masks: masks!, firstStage: trained.firstStage, scaleFactor: ldm.scaleFactor,
                                                 latentShape: trained.latentShape)
            if holdKnown {
                known = SpatialInputs.knownLatents(images: x, masks: masks!, firstStage: trained.firstStage, scaleFactor: ldm.scaleFactor,
                                                   latentShape: trained.latentShape)
            }
            shown = SpatialInputs.blanked(x.slice(alongAxis: 0, 0..<1), masks: [m])
            original = x
        }
        let count = names.count
        // A hybrid model also takes a class or caption: one for every input.
        var labels: [Int]?, captions: [String]?
        if conditioning.isGuidable {
            (labels, captions) = try trained.conditions(classes: classes, classesRequested: classesRequested, prompts: prompts, perClass: count)
            guard (labels?.count ?? captions?.count ?? count) == count else {
                throw SampleError("give one class (--class) or one --prompt: it conditions every input")
            }
        } else if classesRequested || prompts != nil {
            throw SampleError("--class/--prompt given, but \(trained.url.path) is conditioned on the \(spatial.task == .superResolution ? "low-resolution" : "masked") image alone")
        }
        say("sample: \(spatial.task.rawValue) of \(count) input(s) with \(trained.url.path) (\(sampler) \(steps) steps, seed \(seed)) "
            + "on \(communicator.size) rank(s)")
        let started = ProgressReporter.now()
        let mine = evaluationShard(count: count, rank: communicator.rank, worldSize: communicator.size)
        let latents = try sampling.sampleLatents(ldm, latentShape: trained.latentShape, indices: Array(mine),
                                                 labels: labels.map { Array($0[mine]) }, captions: captions.map { Array($0[mine]) },
                                                 spatial: condition.slice(alongAxis: 0, mine), known: known?.slice(mine))
        var outputs = LatentDiffusionSampling.decode(latents, scaleFactor: ldm.scaleFactor, firstStage: trained.firstStage)
        if let masks, let original {
            outputs = SpatialInputs.composite(generated: outputs, original: original.slice(alongAxis: 0, mine), masks: Array(masks[mine]))
        }
        guard let all = try TrainedLatentDiffusion.gathered(outputs, communicator: communicator) else { return }
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let suffix = spatial.task == .superResolution ? "_x\(spatial.factor)" : ""
        for i in 0..<count {
            try PNG.write(ImageGrid.make(all.slice(alongAxis: 0, i..<i + 1), columns: 1, padding: 0),
                          to: output.appendingPathComponent(names[i] + suffix + ".png"))
        }
        // Grid: inputs (bicubic upsampling) above outputs, or the masked image then the fills.
        let gridURL = output.appendingPathComponent("grid.png")
        let columns = spatial.task == .superResolution ? min(count, 10) : count + 1
        let grid = spatial.task == .superResolution
            ? Tensor.concatenate([shown.slice(alongAxis: 0, 0..<columns), all.slice(alongAxis: 0, 0..<columns)], alongAxis: 0)
            : Tensor.concatenate([shown, all], alongAxis: 0)
        try ImageGrid.write(ImageGrid.enlarged(grid, minimumWidth: 600, columns: columns), to: gridURL, columns: columns)
        try SafeTensors.write(["images": all], metadata: ["ldm.model": trained.url.path, "ldm.task": spatial.task.rawValue,
                                                          "ldm.steps": String(steps), "ldm.seed": String(seed)],
                              to: output.appendingPathComponent("samples.safetensors"))
        say(String(format: "sample: wrote %d PNG(s) and %@ (%@) in %.1f s", count, gridURL.path,
                   spatial.task == .superResolution ? "top: bicubic upsampling, bottom: model" : "first: masked input, then the fills",
                   ProgressReporter.now() - started))
    }
}
