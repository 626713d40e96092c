import Data
import Foundation
import LatentCache
import Models
import Tensor

/// The concatenated input of a super-resolution or inpainting model, made at training time
/// from the images the cache's latents were encoded from (found by the dataset indices the
/// cache stores), so the cache holds latents only and every task shares it:
/// - super-resolution: the image bicubic-downsampled `factor`× (what a user's low-resolution
///   file is), resized to the latent grid;
/// - inpainting: the latent of the image with the mask's pixels set to 0 (mid-grey), from the
///   frozen first stage, times scale_factor, beside the mask at the latent grid. A training
///   mask is drawn from (seed, step, dataset index), a held-out one from (seed, position): no
///   generator state to checkpoint, the same on every rank and after a resume.
public final class SpatialConditionSource {
    public let config: SpatialConditionConfig
    public let latentShape: [Int]
    let datasets: [String: ImageDataset]
    let firstStage: FirstStageModel?
    /// The frozen first stage's weights in the convolutions' layouts, reordered once for the
    /// run rather than at every batch an inpainting condition is encoded for.
    let layouts = WeightLayoutCache()
    let seed: UInt64

    /// `images`: the data section the cache was made from; each split's dataset must be the one
    /// the cache records.
    public init(config: SpatialConditionConfig, images: DataConfig, manifest: LatentCacheManifest, splits: [String],
                cache: String, seed: UInt64, firstStage: FirstStageModel?) throws {
        self.config = config
        self.seed = seed
        latentShape = manifest.latentShape
        var datasets: [String: ImageDataset] = [:]
        // In the given order (a Set's order changes from run to run, and with it which error a bad
        // data section gets).
        var seen: Set<String> = []
        for split in splits where seen.insert(split).inserted {
            guard let recorded = manifest.splits.first(where: { $0.name == split }) else {
                throw ConfigError.cache(cache, "the cache has no \(split) split")
            }
            let dataset: ImageDataset
            switch split {
            case "train": dataset = try images.trainingSet()
            default:
                guard let held = try images.validationSet() else {
                    throw ConfigError(file: "data.images", "the cache's \(split) split needs held-out images (data.images.validation_path)")
                }
                dataset = held
            }
            guard dataset.identity == recorded.dataset else {
                throw ConfigError(file: "data.images", "its \(split) images are \(dataset.identity), but \(cache) was encoded from "
                    + "\(recorded.dataset): give the data section the cache was made from")
            }
            let p = manifest.preprocessing
            guard dataset.channels == p.channels, dataset.height == p.resolution, dataset.width == p.resolution else {
                throw ConfigError(file: "data.images", "its images are \(dataset.channels)×\(dataset.height)×\(dataset.width), the cache "
                    + "was encoded from \(p.channels)×\(p.resolution)×\(p.resolution) (data.images.resolution/channels)")
            }
            datasets[split] = dataset
        }
        self.datasets = datasets
        let resolution = manifest.preprocessing.resolution
        if config.task == .superResolution, resolution % config.factor != 0 {
            throw ConfigError(file: "model.conditioning.spatial.factor", "\(config.factor) does not divide the image side \(resolution)")
        }
        if config.task == .inpainting {
            guard let firstStage else { throw ConfigError.cache(cache, "inpainting needs the first stage to encode masked images") }
            self.firstStage = firstStage
        } else {
            self.firstStage = nil
        }
    }

    public var imageChannels: Int { datasets.values.first?.channels ?? 1 }
    public var conditionChannels: Int { config.channels(latentChannels: latentShape[0], imageChannels: imageChannels) }

    /// The condition of a training batch at `step`.
    public func training(_ batch: LatentBatch, step: Int, scaleFactor: Float) throws -> Tensor {
        try condition(split: "train", indices: batch.indices, scaleFactor: scaleFactor) { k in
            RandomGenerator(seed: seed).derived(3, UInt64(step), UInt64(batch.indices[k]))
        }
    }

    /// The condition of held-out samples at split `positions` (fixed masks).
    public func heldOut(_ batch: LatentBatch, split: String, positions: [Int], scaleFactor: Float) throws -> Tensor {
        try condition(split: split, indices: batch.indices, scaleFactor: scaleFactor) { k in
            RandomGenerator(seed: seed).derived(4, UInt64(positions[k]))
        }
    }

    /// Held-out examples for grids and evaluation.
    public struct Examples {
        /// The originals, [N, C, H, W] in [−1, 1].
        public var images: Tensor
        /// What a user would give, at full resolution: the low-resolution image upsampled
        /// (bicubic, the baseline to beat) or the image with the mask's pixels blanked.
        public var inputs: Tensor
        /// Inpainting: each image's mask.
        public var masks: [InpaintingMask]?
        /// The model's condition.
        public var condition: Tensor
    }

    /// The held-out images at split `positions` (dataset `indices`) with their inputs, masks
    /// (the same as the held-out loss uses) and conditions.
    public func heldOutExamples(split: String, indices: [Int], positions: [Int], scaleFactor: Float) throws -> Examples {
        guard let dataset = datasets[split] else { throw ConfigError(file: "data.images", "no \(split) images") }
        let (images, _) = try dataset.batch(indices)
        switch config.task {
        case .superResolution:
            let low = try indices.map { lowResolution(try dataset.image(at: $0)) }
            let upsampled = low.map { $0.resized(width: dataset.width, height: dataset.height, filter: .bicubic) }
            return Examples(images: images, inputs: SpatialInputs.tensor(upsampled), masks: nil, condition: try superResolutionInput(low))
        case .inpainting:
            let masks = positions.map {
                SpatialInputs.heldOutMask(seed: seed, position: $0, width: dataset.width, height: dataset.height, boxFraction: config.boxFraction)
            }
            return Examples(images: images, inputs: SpatialInputs.blanked(images, masks: masks), masks: masks,
                            condition: inpaintingInput(images: images, masks: masks, scaleFactor: scaleFactor))
        }
    }

    func condition(split: String, indices: [Int], scaleFactor: Float, generator: (Int) -> RandomGenerator) throws -> Tensor {
        guard let dataset = datasets[split] else { throw ConfigError(file: "data.images", "no \(split) images") }
        switch config.task {
        case .superResolution:
            return try superResolutionInput(indices.map { try lowResolution(dataset.image(at: $0)) })
        case .inpainting:
            let (images, _) = try dataset.batch(indices)
            let masks = indices.indices.map { k -> InpaintingMask in
                var g = generator(k)
                return InpaintingMask.random(width: dataset.width, height: dataset.height, boxFraction: config.boxFraction, generator: &g)
            }
            return inpaintingInput(images: images, masks: masks, scaleFactor: scaleFactor)
        }
    }

    /// The low-resolution version of a full-resolution image.
    public func lowResolution(_ image: Image8) -> Image8 { SpatialInputs.lowResolution(image, factor: config.factor) }

    public func superResolutionInput(_ images: [Image8]) throws -> Tensor {
        try SpatialInputs.superResolution(images, latentShape: latentShape, channels: imageChannels)
    }

    public func inpaintingInput(images: Tensor, masks: [InpaintingMask], scaleFactor: Float) -> Tensor {
        layouts.during {
            SpatialInputs.inpainting(images: images, masks: masks, firstStage: firstStage!, scaleFactor: scaleFactor, latentShape: latentShape)
        }
    }
}
