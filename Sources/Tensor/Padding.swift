// Spatial padding amounts, and constant padding of NCHW tensors with its backward rule.

/// Rows added above/below and columns added left/right of an image (PyTorch's F.pad order
/// for the last two dimensions is (left, right, top, bottom)).
public struct Padding2D: Equatable, Hashable, Sendable, CustomStringConvertible {
    public var top: Int, bottom: Int, left: Int, right: Int

    /// The same amount on every side.
    public init(_ all: Int) { self.init(top: all, bottom: all, left: all, right: all) }

    public init(top: Int, bottom: Int, left: Int, right: Int) {
        precondition(top >= 0 && bottom >= 0 && left >= 0 && right >= 0,
                     "Padding2D must be non-negative, got top \(top) bottom \(bottom) left \(left) right \(right)")
        self.top = top
        self.bottom = bottom
        self.left = left
        self.right = right
    }

    public var isZero: Bool { top == 0 && bottom == 0 && left == 0 && right == 0 }

    public var description: String { "Padding2D(top: \(top), bottom: \(bottom), left: \(left), right: \(right))" }
}

extension Tensor {
    /// The last two dimensions surrounded by `value` (rank ≥ 2, usually NCHW), like
    /// `F.pad(x, (left, right, top, bottom), value=value)`.
    public func padded(_ p: Padding2D, value: Float = 0) -> Tensor {
        precondition(rank >= 2, "padded needs rank ≥ 2 (…, H, W), got shape \(shape)")
        if p.isZero { return self }
        let h = shape[rank - 2], w = shape[rank - 1]
        let ho = h + p.top + p.bottom, wo = w + p.left + p.right
        let planes = count / max(h * w, 1)
        let out = Tensor(uninitialized: Array(shape.dropLast(2)) + [ho, wo])
        let src = pointer, dst = out.pointer
        Parallel.forRange(planes, grain: max(1, 16384 / max(ho * wo, 1))) { r in
            for plane in r {
                let s = src + plane * h * w, d = dst + plane * ho * wo
                d.update(repeating: value, count: p.top * wo)
                for y in 0..<h {
                    let row = d + (p.top + y) * wo
                    row.update(repeating: value, count: p.left)
                    (row + p.left).update(from: s + y * w, count: w)
                    (row + p.left + w).update(repeating: value, count: p.right)
                }
                (d + (p.top + h) * wo).update(repeating: value, count: p.bottom * wo)
            }
        }
        return out.recorded("padded", inputs: [self]) { g in [g.cropped(p)] }
    }

    /// The inverse of `padded`: drops `p` rows and columns from the borders. Not recorded
    /// (used for the padding gradient).
    func cropped(_ p: Padding2D) -> Tensor {
        let ho = shape[rank - 2], wo = shape[rank - 1]
        let h = ho - p.top - p.bottom, w = wo - p.left - p.right
        precondition(h >= 0 && w >= 0, "cropped: \(p) is larger than shape \(shape)")
        let planes = count / max(ho * wo, 1)
        let out = Tensor(uninitialized: Array(shape.dropLast(2)) + [h, w])
        let src = pointer, dst = out.pointer
        Parallel.forRange(planes, grain: max(1, 16384 / max(h * w, 1))) { r in
            for plane in r {
                let s = src + plane * ho * wo + p.top * wo + p.left, d = dst + plane * h * w
                for y in 0..<h { (d + y * w).update(from: s + y * wo, count: w) }
            }
        }
        return out
    }
}
