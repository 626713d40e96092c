import Tensor

/// A batch of generated (or reconstructed) images and their references, as the metrics see
/// them: `[N, C, H, W]` (or one `[C, H, W]` image) with values in [−1, 1], the range the
/// models and datasets use.
///
/// Metrics are defined on [0, 1] images with data range 1, so every value is mapped by
/// (x + 1) / 2 and clamped to [0, 1] — the same clamp the models' outputs get before they
/// are saved as images (taming/LDM clamp reconstructions to [−1, 1]), so the metric scores
/// the picture a user would see. Conversion is to Double: SSIM subtracts nearly equal
/// moments, which Float32 would not resolve to 1e-4.
struct ImagePairBatch {
    let images: Tensor
    let references: Tensor
    let count: Int
    let channels: Int
    let height: Int
    let width: Int

    init(_ images: Tensor, _ references: Tensor, metric: String) {
        precondition(images.shape == references.shape,
                     "\(metric): images \(images.shape) and references \(references.shape) must have the same shape")
        precondition(images.rank == 4 || images.rank == 3,
                     "\(metric): expected [N, C, H, W] or [C, H, W] images, got shape \(images.shape)")
        let shape = images.rank == 4 ? images.shape : [1] + images.shape
        self.images = images
        self.references = references
        (count, channels, height, width) = (shape[0], shape[1], shape[2], shape[3])
        precondition(channels > 0 && height > 0 && width > 0, "\(metric): empty images of shape \(images.shape)")
    }

    var planeSize: Int { height * width }
    var imageSize: Int { channels * planeSize }

    /// Maps a stored value in [−1, 1] to the metric's [0, 1], clamping values outside.
    @inline(__always)
    static func unitInterval(_ x: Float) -> Double {
        min(max(Double(x) * 0.5 + 0.5, 0), 1)
    }
}
