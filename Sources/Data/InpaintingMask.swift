import Foundation
import Tensor

/// Which pixels of an image to fill (1) and which to keep (0), H×W, row-major.
public struct InpaintingMask: Equatable {
    public let width: Int
    public let height: Int
    public var values: [Float]

    public init(width: Int, height: Int, values: [Float]) {
        precondition(values.count == width * height, "a \(width)×\(height) mask needs \(width * height) values, got \(values.count)")
        self.width = width
        self.height = height
        self.values = values
    }

    /// The share of pixels to fill.
    public var coverage: Double { values.reduce(0.0) { $0 + Double($1) } / Double(max(values.count, 1)) }

    /// A training mask: with probability `boxFraction` one random box (a quarter to three
    /// quarters of each side), else 1–4 free-form strokes (polylines drawn with a round brush),
    /// as LaMa's and the LDM inpainting masks. Every draw comes from `generator`.
    public static func random(width: Int, height: Int, boxFraction: Double, generator g: inout RandomGenerator) -> InpaintingMask {
        var mask = InpaintingMask(width: width, height: height, values: [Float](repeating: 0, count: width * height))
        if g.nextUniformDouble() < boxFraction {
            let w = width / 4 + g.nextInt(below: max(1, width / 2 + 1)), h = height / 4 + g.nextInt(below: max(1, height / 2 + 1))
            let x0 = g.nextInt(below: max(1, width - w + 1)), y0 = g.nextInt(below: max(1, height - h + 1))
            for y in y0..<min(height, y0 + max(1, h)) {
                for x in x0..<min(width, x0 + max(1, w)) { mask.values[y * width + x] = 1 }
            }
            return mask
        }
        let side = Double(min(width, height))
        for _ in 0..<(1 + g.nextInt(below: 4)) {
            var x = g.nextUniformDouble() * Double(width), y = g.nextUniformDouble() * Double(height)
            let radius = side * (0.04 + 0.08 * g.nextUniformDouble())
            var angle = g.nextUniformDouble() * 2 * Double.pi
            for _ in 0..<(1 + g.nextInt(below: 4)) {
                angle += (g.nextUniformDouble() - 0.5) * Double.pi
                let length = side * (0.15 + 0.35 * g.nextUniformDouble())
                let (nx, ny) = (x + cos(angle) * length, y + sin(angle) * length)
                mask.paintSegment(from: (x, y), to: (nx, ny), radius: radius)
                x = min(max(nx, 0), Double(width - 1))
                y = min(max(ny, 0), Double(height - 1))
            }
        }
        return mask
    }

    /// Sets every pixel whose centre lies within `radius` of the segment.
    mutating func paintSegment(from a: (Double, Double), to b: (Double, Double), radius: Double) {
        let (dx, dy) = (b.0 - a.0, b.1 - a.1)
        let length2 = dx * dx + dy * dy
        let r = Int(radius.rounded(.up)) + 1
        let xs = max(0, Int(min(a.0, b.0)) - r)...min(width - 1, Int(max(a.0, b.0)) + r)
        let ys = max(0, Int(min(a.1, b.1)) - r)...min(height - 1, Int(max(a.1, b.1)) + r)
        guard !xs.isEmpty, !ys.isEmpty else { return }
        for y in ys {
            for x in xs {
                let (px, py) = (Double(x) + 0.5, Double(y) + 0.5)
                let t = length2 > 0 ? min(1, max(0, ((px - a.0) * dx + (py - a.1) * dy) / length2)) : 0
                let (ex, ey) = (px - a.0 - t * dx, py - a.1 - t * dy)
                if ex * ex + ey * ey <= radius * radius { values[y * width + x] = 1 }
            }
        }
    }

    /// A mask image: pixels at or above mid-grey (of the mean of the channels) are filled.
    public init(image: Image8) {
        var values = [Float](repeating: 0, count: image.width * image.height)
        for p in 0..<values.count {
            var sum = 0
            for c in 0..<image.channels { sum += Int(image.pixels[p * image.channels + c]) }
            values[p] = sum >= 128 * image.channels ? 1 : 0
        }
        self.init(width: image.width, height: image.height, values: values)
    }

    /// The mask at a coarser grid (the latents'): a cell is to be filled if any of its pixels is.
    public func downsampled(width w: Int, height h: Int) -> [Float] {
        precondition(width % w == 0 && height % h == 0, "a \(width)×\(height) mask does not tile a \(w)×\(h) grid")
        let (fx, fy) = (width / w, height / h)
        var out = [Float](repeating: 0, count: w * h)
        for y in 0..<height {
            for x in 0..<width where values[y * width + x] > 0 { out[(y / fy) * w + x / fx] = 1 }
        }
        return out
    }
}
