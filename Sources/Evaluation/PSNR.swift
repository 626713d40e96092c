import Foundation
import Tensor

/// Peak signal-to-noise ratio per image: 10·log10(1 / MSE), with the MSE taken over all
/// channels and pixels of the image in [0, 1] (data range 1), as skimage's
/// `peak_signal_noise_ratio(data_range=1)` and torchmetrics' per-image PSNR compute it.
///
/// Identical images have MSE 0 and an infinite PSNR, which would make every mean over the
/// split infinite and cannot be written to JSON; the score is capped at `maximumDecibels`
/// instead (100 dB is an MSE of 1e-10, far below one 8-bit quantisation step, ≈ 58.9 dB at
/// worst), so the cap only touches images that are identical for every practical purpose.
public enum PSNR {
    public static let maximumDecibels = 100.0

    /// The PSNR of an MSE measured on [0, 1] images, capped at `maximumDecibels`.
    public static func decibels(meanSquaredError mse: Double) -> Double {
        precondition(mse >= 0, "PSNR: mean squared error must be non-negative, got \(mse)")
        guard mse > 0 else { return maximumDecibels }
        return min(10 * log10(1 / mse), maximumDecibels)
    }

    /// One PSNR per image of `[N, C, H, W]` (or `[C, H, W]`) tensors with values in [−1, 1].
    public static func perImage(_ images: Tensor, _ references: Tensor) -> [Double] {
        let batch = ImagePairBatch(images, references, metric: "PSNR")
        let size = batch.imageSize
        var result = [Double](repeating: 0, count: batch.count)
        let a = images.pointer, b = references.pointer
        result.withUnsafeMutableBufferPointer { out in
            Parallel.forEach(batch.count) { n in
                let x = a + n * size, y = b + n * size
                var squaredError = 0.0
                for i in 0..<size {
                    let d = ImagePairBatch.unitInterval(x[i]) - ImagePairBatch.unitInterval(y[i])
                    squaredError += d * d
                }
                out[n] = decibels(meanSquaredError: squaredError / Double(size))
            }
        }
        return result
    }
}
