import Foundation

/// How an image of arbitrary size is brought to the configured resolution.
public enum ImageFit: String, Codable, CaseIterable, Sendable {
    /// Scale so the shorter side matches, then crop the centre (photographs).
    case resizeCrop = "resize-crop"
    /// Centre the image on a black canvas, first shrinking it if it is larger (keeps every pixel
    /// of small images such as Fashion-MNIST's 28×28 at 32×32).
    case pad
    /// Scale to exactly the target size, ignoring the aspect ratio.
    case stretch
}

extension Image8 {
    /// This image brought to `width`×`height` by `fit`.
    public func fitted(width: Int, height: Int, fit: ImageFit) -> Image8 {
        if self.width == width && self.height == height { return self }
        switch fit {
        case .stretch:
            return resized(width: width, height: height)
        case .resizeCrop:
            let scale = max(Double(width) / Double(self.width), Double(height) / Double(self.height))
            let w = max(width, Int((Double(self.width) * scale).rounded()))
            let h = max(height, Int((Double(self.height) * scale).rounded()))
            return resized(width: w, height: h).cropped(x: (w - width) / 2, y: (h - height) / 2, width: width, height: height)
        case .pad:
            var img = self
            if img.width > width || img.height > height {
                let scale = min(Double(width) / Double(img.width), Double(height) / Double(img.height))
                img = img.resized(width: max(1, min(width, Int((Double(img.width) * scale).rounded()))),
                                  height: max(1, min(height, Int((Double(img.height) * scale).rounded()))))
            }
            return img.padded(toWidth: width, height: height)
        }
    }

    func cropped(x: Int, y: Int, width: Int, height: Int) -> Image8 {
        var out = [UInt8](repeating: 0, count: width * height * channels)
        for r in 0..<height {
            let src = ((y + r) * self.width + x) * channels
            out.replaceSubrange(r * width * channels ..< (r + 1) * width * channels,
                                with: pixels[src ..< src + width * channels])
        }
        return Image8(width: width, height: height, channels: channels, pixels: out)
    }

    /// Centred on a black canvas.
    func padded(toWidth width: Int, height: Int) -> Image8 {
        var out = [UInt8](repeating: 0, count: width * height * channels)
        let x0 = (width - self.width) / 2, y0 = (height - self.height) / 2
        for r in 0..<self.height {
            let dst = ((y0 + r) * width + x0) * channels
            out.replaceSubrange(dst ..< dst + self.width * channels,
                                with: pixels[r * self.width * channels ..< (r + 1) * self.width * channels])
        }
        return Image8(width: width, height: height, channels: channels, pixels: out)
    }

    /// Separable resampling with a triangle (bilinear) or Keys cubic (bicubic, a = −0.5) filter
    /// widened by the scale factor when shrinking, so downscaling averages instead of aliasing
    /// (as PIL's antialiased resize).
    public func resized(width: Int, height: Int, filter: ResampleFilter = .bilinear) -> Image8 {
        let horizontal = Image8.resampleWeights(from: self.width, to: width, filter: filter)
        let vertical = Image8.resampleWeights(from: self.height, to: height, filter: filter)
        // Rows first, into a float buffer of size height_in × width_out.
        var rows = [Float](repeating: 0, count: self.height * width * channels)
        for y in 0..<self.height {
            for (x, taps) in horizontal.enumerated() {
                for c in 0..<channels {
                    var s: Float = 0
                    for (i, w) in taps { s += w * Float(pixels[(y * self.width + i) * channels + c]) }
                    // PIL keeps the intermediate image in 8 bits: bicubic's overshoot is clipped there.
                    rows[(y * width + x) * channels + c] = filter == .bicubic ? max(0, min(255, s.rounded())) : s
                }
            }
        }
        var out = [UInt8](repeating: 0, count: width * height * channels)
        for (y, taps) in vertical.enumerated() {
            for x in 0..<width {
                for c in 0..<channels {
                    var s: Float = 0
                    for (i, w) in taps { s += w * rows[(i * width + x) * channels + c] }
                    out[(y * width + x) * channels + c] = UInt8(max(0, min(255, s.rounded())))
                }
            }
        }
        return Image8(width: width, height: height, channels: channels, pixels: out)
    }

    /// For each output index, the input indices and normalised weights that contribute to it.
    static func resampleWeights(from n: Int, to m: Int, filter: ResampleFilter = .bilinear) -> [[(Int, Float)]] {
        let scale = Double(n) / Double(m)
        let stretch = max(1.0, scale)
        let support = filter.support * stretch
        return (0..<m).map { o in
            let center = (Double(o) + 0.5) * scale
            let lo = max(0, Int((center - support).rounded(.down)))
            let hi = min(n - 1, Int((center + support).rounded(.up)))
            var taps: [(Int, Float)] = []
            var total = 0.0
            for i in lo...hi {
                let w = filter.weight((Double(i) + 0.5 - center) / stretch)
                if w != 0 { taps.append((i, Float(w))); total += w }
            }
            if taps.isEmpty { return [(min(n - 1, max(0, Int(center))), 1)] }
            return taps.map { ($0.0, Float(Double($0.1) / total)) }
        }
    }
}

/// The kernel of a separable resize.
public enum ResampleFilter: String, Sendable {
    case bilinear
    /// Keys' cubic convolution with a = −0.5 (PIL's and OpenCV's bicubic).
    case bicubic

    /// Half-width of the kernel in input pixels at scale 1.
    var support: Double { self == .bilinear ? 1 : 2 }

    func weight(_ x: Double) -> Double {
        let t = abs(x)
        switch self {
        case .bilinear: return max(0, 1 - t)
        case .bicubic:
            let a = -0.5
            if t < 1 { return ((a + 2) * t - (a + 3)) * t * t + 1 }
            if t < 2 { return (((t - 5) * t + 8) * t - 4) * a }
            return 0
        }
    }
}
