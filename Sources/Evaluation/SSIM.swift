import Foundation
import Tensor

/// Structural similarity per image (Wang et al. 2004), with the defaults of skimage's
/// `structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
/// data_range=1)`, torchmetrics and pytorch_msssim: an 11×11 Gaussian window with σ = 1.5,
/// K1 = 0.01, K2 = 0.03, on [0, 1] images; computed per channel and averaged over channels.
///
/// Border: the SSIM map is averaged over the "valid" positions only, where the whole window
/// lies inside the image ((H − 10) × (W − 10) for the default window). pytorch_msssim
/// filters without padding, torchmetrics crops its padded map back to this region, and
/// skimage crops (window − 1) / 2 from each side of its reflect-filtered map — all three
/// average exactly these positions, so the scores agree. Images must be at least as large
/// as the window.
public struct SSIM: Sendable {
    public let windowSize: Int
    public let sigma: Double
    public let k1: Double
    public let k2: Double
    /// Normalised 1-D Gaussian taps; the 2-D window is their outer product (separable).
    let taps: [Double]

    public init(windowSize: Int = 11, sigma: Double = 1.5, k1: Double = 0.01, k2: Double = 0.03) {
        precondition(windowSize > 0 && windowSize % 2 == 1, "SSIM: window size must be odd and positive, got \(windowSize)")
        precondition(sigma > 0, "SSIM: sigma must be positive, got \(sigma)")
        self.windowSize = windowSize
        self.sigma = sigma
        self.k1 = k1
        self.k2 = k2
        let radius = Double(windowSize / 2)
        let weights = (0..<windowSize).map { k -> Double in
            let d = Double(k) - radius
            return exp(-d * d / (2 * sigma * sigma))
        }
        let total = weights.reduce(0, +)
        taps = weights.map { $0 / total }
    }

    /// One SSIM per image of `[N, C, H, W]` (or `[C, H, W]`) tensors with values in [−1, 1].
    public func perImage(_ images: Tensor, _ references: Tensor) -> [Double] {
        let batch = ImagePairBatch(images, references, metric: "SSIM")
        precondition(batch.height >= windowSize && batch.width >= windowSize,
                     "SSIM: images of \(batch.height)×\(batch.width) are smaller than the \(windowSize)×\(windowSize) window")
        // One task per (image, channel) plane so small batches of RGB images still fill the cores.
        let planes = batch.count * batch.channels
        var planeScores = [Double](repeating: 0, count: planes)
        planeScores.withUnsafeMutableBufferPointer { out in
            Parallel.forEach(planes) { p in
                out[p] = planeSSIM(images.pointer + p * batch.planeSize, references.pointer + p * batch.planeSize,
                                   height: batch.height, width: batch.width)
            }
        }
        return (0..<batch.count).map { n in
            planeScores[n * batch.channels..<(n + 1) * batch.channels].reduce(0, +) / Double(batch.channels)
        }
    }

    /// Mean SSIM of one channel plane over the valid positions.
    ///
    /// The five local moments (x, y, x², y², xy) are Gaussian-filtered in two passes:
    /// horizontally into `rows` (H × outW × 5), then vertically one output row at a time.
    func planeSSIM(_ xPlane: UnsafePointer<Float>, _ yPlane: UnsafePointer<Float>, height: Int, width: Int) -> Double {
        let win = windowSize
        let outH = height - win + 1, outW = width - win + 1
        let c1 = k1 * k1, c2 = k2 * k2  // data range 1

        // The plane in [0, 1] and Double, interleaved as (x, y) pairs.
        let pixels = UnsafeMutablePointer<Double>.allocate(capacity: 2 * height * width)
        defer { pixels.deallocate() }
        for i in 0..<height * width {
            pixels[2 * i] = ImagePairBatch.unitInterval(xPlane[i])
            pixels[2 * i + 1] = ImagePairBatch.unitInterval(yPlane[i])
        }

        let rows = UnsafeMutablePointer<Double>.allocate(capacity: height * outW * 5)
        defer { rows.deallocate() }
        taps.withUnsafeBufferPointer { g in
            for r in 0..<height {
                let src = pixels + 2 * r * width
                let dst = rows + r * outW * 5
                for c in 0..<outW {
                    var sx = 0.0, sy = 0.0, sxx = 0.0, syy = 0.0, sxy = 0.0
                    for k in 0..<win {
                        let x = src[2 * (c + k)], y = src[2 * (c + k) + 1], w = g[k]
                        let wx = w * x, wy = w * y
                        sx += wx; sy += wy
                        sxx += wx * x; syy += wy * y; sxy += wx * y
                    }
                    let o = dst + 5 * c
                    o[0] = sx; o[1] = sy; o[2] = sxx; o[3] = syy; o[4] = sxy
                }
            }
        }

        let moments = UnsafeMutablePointer<Double>.allocate(capacity: outW * 5)
        defer { moments.deallocate() }
        var total = 0.0
        taps.withUnsafeBufferPointer { g in
            for r in 0..<outH {
                moments.update(repeating: 0, count: outW * 5)
                for k in 0..<win {
                    let src = rows + (r + k) * outW * 5, w = g[k]
                    for j in 0..<outW * 5 { moments[j] += w * src[j] }
                }
                for c in 0..<outW {
                    let m = moments + 5 * c
                    let mx = m[0], my = m[1]
                    let vx = m[2] - mx * mx, vy = m[3] - my * my, cxy = m[4] - mx * my
                    total += ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
                }
            }
        }
        return total / Double(outH * outW)
    }
}
