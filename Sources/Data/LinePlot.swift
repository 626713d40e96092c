import Foundation

/// Loss curves as a picture: one panel per series, stacked, each with its name, its value
/// range and the step range, the curve drawn as connected line segments. Non-finite points
/// are skipped.
public enum LinePlot {
    public struct Series {
        public var name: String
        public var points: [(step: Double, value: Double)]
        /// Plot log10 of the values (positive values only).
        public var logarithmic: Bool

        public init(name: String, points: [(step: Double, value: Double)], logarithmic: Bool = false) {
            self.name = name
            self.points = points
            self.logarithmic = logarithmic
        }
    }

    static let background: [UInt8] = [255, 255, 255], ink: [UInt8] = [40, 40, 40]
    static let grid: [UInt8] = [220, 220, 220]
    /// The colour of the curves.
    public static let line: [UInt8] = [31, 119, 180]

    /// An RGB image `width` wide, `panelHeight` per series.
    public static func render(_ series: [Series], width: Int = 800, panelHeight: Int = 220) -> Image8 {
        let height = max(1, series.count) * panelHeight
        var image = Image8(width: width, height: height, channels: 3,
                           pixels: [UInt8](repeating: 255, count: width * height * 3))
        for (k, s) in series.enumerated() { drawPanel(s, top: k * panelHeight, width: width, height: panelHeight, into: &image) }
        return image
    }

    static func label(_ v: Double) -> String {
        if v == 0 { return "0" }
        let a = abs(v)
        return a >= 1e4 || a < 1e-3 ? String(format: "%.3e", v) : String(format: "%.4g", v)
    }

    static func drawPanel(_ s: Series, top: Int, width: Int, height: Int, into image: inout Image8) {
        let left = 90, right = width - 20, plotTop = top + 28, bottom = top + height - 30
        let points = s.points.compactMap { p -> (Double, Double)? in
            guard p.value.isFinite, p.step.isFinite else { return nil }
            if s.logarithmic { return p.value > 0 ? (p.step, Foundation.log10(p.value)) : nil }
            return (p.step, p.value)
        }
        BitmapFont.draw(s.name + (s.logarithmic ? " (log scale)" : ""), x: left, y: top + 8, scale: 2, color: ink, into: &image)
        // Frame.
        for x in left...right { image.set(x: x, y: plotTop, grid); image.set(x: x, y: bottom, ink) }
        for y in plotTop...bottom { image.set(x: left, y: y, ink); image.set(x: right, y: y, grid) }
        guard let first = points.first else {
            BitmapFont.draw("no finite values", x: left + 10, y: (plotTop + bottom) / 2, color: ink, into: &image)
            return
        }
        var (x0, x1, y0, y1) = (first.0, first.0, first.1, first.1)
        for (x, y) in points { x0 = min(x0, x); x1 = max(x1, x); y0 = min(y0, y); y1 = max(y1, y) }
        if x1 == x0 { x1 = x0 + 1 }
        if y1 == y0 { y0 -= 0.5; y1 += 0.5 }
        let shown = { (v: Double) in s.logarithmic ? Foundation.pow(10, v) : v }
        // Value labels at the top and bottom, mid grid line, step range under the axis.
        BitmapFont.draw(label(shown(y1)), x: 4, y: plotTop, color: ink, into: &image)
        BitmapFont.draw(label(shown(y0)), x: 4, y: bottom - BitmapFont.height, color: ink, into: &image)
        let mid = (plotTop + bottom) / 2
        for x in stride(from: left, through: right, by: 4) { image.set(x: x, y: mid, grid) }
        BitmapFont.draw(label(shown((y0 + y1) / 2)), x: 4, y: mid - BitmapFont.height / 2, color: ink, into: &image)
        BitmapFont.draw("step " + label(x0), x: left, y: bottom + 8, color: ink, into: &image)
        let end = "step " + label(x1)
        BitmapFont.draw(end, x: right - BitmapFont.textWidth(end), y: bottom + 8, color: ink, into: &image)
        func pixel(_ p: (Double, Double)) -> (Int, Int) {
            (left + Int(((p.0 - x0) / (x1 - x0) * Double(right - left)).rounded()),
             bottom - Int(((p.1 - y0) / (y1 - y0) * Double(bottom - plotTop)).rounded()))
        }
        var previous = pixel(first)
        for p in points.dropFirst() {
            let current = pixel(p)
            // Bresenham-style segment by the longer axis.
            let steps = max(abs(current.0 - previous.0), abs(current.1 - previous.1), 1)
            for i in 0...steps {
                let x = previous.0 + (current.0 - previous.0) * i / steps, y = previous.1 + (current.1 - previous.1) * i / steps
                image.set(x: x, y: y, line)
                image.set(x: x, y: y + 1, line)
            }
            previous = current
        }
        if points.count == 1 { for d in -2...2 { image.set(x: previous.0 + d, y: previous.1, line) } }
    }
}
