import Foundation
import Tensor

/// Tiles a batch of images into one picture (reconstruction and sample grids).
public enum ImageGrid {
    /// `images` is [N, C, H, W] in [−1, 1] (C = 1 or 3); `columns` images per row, with a
    /// `padding`-pixel black border between tiles.
    public static func make(_ images: Tensor, columns: Int = 8, padding: Int = 2) -> Image8 {
        precondition(images.rank == 4 && (images.shape[1] == 1 || images.shape[1] == 3),
                     "ImageGrid needs [N, 1|3, H, W], got \(images.shape)")
        let n = images.shape[0], c = images.shape[1], h = images.shape[2], w = images.shape[3]
        let cols = max(1, min(columns, n)), rows = (n + cols - 1) / cols
        let width = cols * w + (cols + 1) * padding, height = rows * h + (rows + 1) * padding
        var pixels = [UInt8](repeating: 0, count: width * height * c)
        let p = images.pointer
        for i in 0..<n {
            let x0 = padding + (i % cols) * (w + padding), y0 = padding + (i / cols) * (h + padding)
            for y in 0..<h { for x in 0..<w { for ch in 0..<c {
                let v = p[((i * c + ch) * h + y) * w + x]
                let byte = UInt8(max(0, min(255, ((v + 1) * 127.5).rounded())))
                pixels[((y0 + y) * width + x0 + x) * c + ch] = byte
            } } }
        }
        return Image8(width: width, height: height, channels: c, pixels: pixels)
    }

    /// `images` [N, C, H, W] enlarged (nearest) by the smallest integer factor that makes a grid
    /// of `columns` at least `minimumWidth` pixels wide, so small images are readable at a glance.
    public static func enlarged(_ images: Tensor, minimumWidth: Int, columns: Int) -> Tensor {
        let width = images.shape[3] * max(1, min(columns, images.shape[0]))
        let factor = max(1, (minimumWidth + width - 1) / max(width, 1))
        return factor == 1 ? images : withoutGrad { images.upsampledNearest(scale: factor) }
    }

    /// Writes the grid as a PNG.
    public static func write(_ images: Tensor, to url: URL, columns: Int = 8) throws {
        try PNG.write(make(images, columns: columns), to: url)
    }
}
