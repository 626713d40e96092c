import Data
import Diffusion
import Foundation
import Models
import Tensor

/// The concatenated inputs of super-resolution and inpainting models, from images a user
/// gives or the trainer reads: shared by training, `ldm sample` and `ldm evaluate ldm`.
public enum SpatialInputs {
    /// The image downsampled `factor`× with the antialiased bicubic filter.
    public static func lowResolution(_ image: Image8, factor: Int) -> Image8 {
        image.resized(width: image.width / factor, height: image.height / factor, filter: .bicubic)
    }

    /// Low-resolution images as the model's input: resized (bicubic) to the latent grid when
    /// their size differs from it, scaled to [−1, 1].
    public static func superResolution(_ images: [Image8], latentShape: [Int], channels: Int) throws -> Tensor {
        let (h, w) = (latentShape[1], latentShape[2])
        let out = Tensor(uninitialized: [images.count, channels, h, w])
        for (n, image) in images.enumerated() {
            guard image.channels == channels else {
                throw ConfigError(file: "low-resolution input", "has \(image.channels) channel(s); the model takes \(channels)")
            }
            let grid = image.width == w && image.height == h ? image : image.resized(width: w, height: h, filter: .bicubic)
            for c in 0..<channels {
                for p in 0..<(h * w) { out.pointer[(n * channels + c) * h * w + p] = Float(grid.pixels[p * channels + c]) / 127.5 - 1 }
            }
        }
        return out
    }

    /// [E(x ⊙ (1 − m)) · scale_factor, m at the latent grid] for images in [−1, 1]: the
    /// first stage's latent (KL: posterior mean) of the blanked image beside the mask.
    public static func inpainting(images: Tensor, masks: [InpaintingMask], firstStage: FirstStageModel, scaleFactor: Float,
                                  latentShape: [Int]) -> Tensor {
        let n = images.shape[0]
        let masked = blanked(images, masks: masks)
        firstStage.module.eval()
        let latents = withoutGrad { firstStage.encodeMode(masked) * scaleFactor }
        let (lc, h, w) = (latentShape[0], latentShape[1], latentShape[2])
        precondition(latents.shape == [n, lc, h, w], "encoder output \(latents.shape) is not [\(n), \(lc), \(h), \(w)]")
        let maskGrid = Tensor(uninitialized: [n, 1, h, w])
        for i in 0..<n {
            let cells = masks[i].downsampled(width: w, height: h)
            for p in 0..<(h * w) { maskGrid.pointer[i * h * w + p] = cells[p] }
        }
        return Tensor.concatenate([latents, maskGrid], alongAxis: 1)
    }

    /// What an inpainting sampler holds fixed: the image's latent (KL: posterior mean, times
    /// scale_factor) in every latent cell the mask leaves untouched.
    public static func knownLatents(images: Tensor, masks: [InpaintingMask], firstStage: FirstStageModel, scaleFactor: Float,
                                    latentShape: [Int]) -> KnownLatents {
        firstStage.module.eval()
        let latents = withoutGrad { firstStage.encodeMode(images) * scaleFactor }
        let (c, h, w) = (latentShape[0], latentShape[1], latentShape[2])
        let keep = Tensor(uninitialized: latents.shape)
        for i in 0..<images.shape[0] {
            let cells = masks[i].downsampled(width: w, height: h)
            for ch in 0..<c { for p in 0..<(h * w) { keep.pointer[(i * c + ch) * h * w + p] = 1 - cells[p] } }
        }
        return KnownLatents(latents: latents, keep: keep)
    }

    /// The fixed mask of held-out sample `position` (the held-out loss, grids and evaluation).
    public static func heldOutMask(seed: UInt64, position: Int, width: Int, height: Int, boxFraction: Double) -> InpaintingMask {
        var g = RandomGenerator(seed: seed).derived(4, UInt64(position))
        return InpaintingMask.random(width: width, height: height, boxFraction: boxFraction, generator: &g)
    }

    /// Images [N, C, H, W] in [−1, 1] from 8-bit images of one size.
    public static func tensor(_ images: [Image8]) -> Tensor {
        guard let first = images.first else { return Tensor(uninitialized: [0, 1, 1, 1]) }
        let (c, h, w) = (first.channels, first.height, first.width)
        let out = Tensor(uninitialized: [images.count, c, h, w])
        for (n, image) in images.enumerated() {
            for ch in 0..<c {
                for p in 0..<(h * w) { out.pointer[(n * c + ch) * h * w + p] = Float(image.pixels[p * c + ch]) / 127.5 - 1 }
            }
        }
        return out
    }

    /// `images` with the masks' pixels set to 0 (mid-grey), as the encoder sees them.
    public static func blanked(_ images: Tensor, masks: [InpaintingMask]) -> Tensor {
        let (n, c, plane) = (images.shape[0], images.shape[1], images.shape[2] * images.shape[3])
        let out = Tensor(uninitialized: images.shape)
        for i in 0..<n {
            precondition(masks[i].values.count == plane, "mask \(masks[i].width)×\(masks[i].height) does not fit the image")
            for ch in 0..<c {
                for p in 0..<plane {
                    let k = (i * c + ch) * plane + p
                    out.pointer[k] = masks[i].values[p] > 0 ? 0 : images.pointer[k]
                }
            }
        }
        return out
    }

    /// The generated pixels inside the masks, the originals outside (what a user gets back).
    public static func composite(generated: Tensor, original: Tensor, masks: [InpaintingMask]) -> Tensor {
        let (n, c, plane) = (original.shape[0], original.shape[1], original.shape[2] * original.shape[3])
        let out = Tensor(uninitialized: original.shape)
        for i in 0..<n {
            for ch in 0..<c {
                for p in 0..<plane {
                    let k = (i * c + ch) * plane + p
                    out.pointer[k] = masks[i].values[p] > 0 ? generated.pointer[k] : original.pointer[k]
                }
            }
        }
        return out
    }

}
