// Max and average pooling over the last two dimensions of NCHW tensors (PyTorch semantics,
// ceil_mode=False), with their backward rules.

/// Output size and window placement of a pooling op.
struct PoolGeometry {
    let planes: Int, height: Int, width: Int
    let kernel: Int, stride: Int, padding: Int
    let outHeight: Int, outWidth: Int

    init(_ op: String, shape: [Int], kernel: Int, stride: Int, padding: Int) {
        precondition(shape.count == 4, "\(op): input must be NCHW (rank 4), got shape \(shape)")
        precondition(kernel >= 1 && stride >= 1, "\(op): kernel \(kernel) and stride \(stride) must be ≥ 1")
        precondition(padding >= 0 && padding <= kernel / 2,
                     "\(op): padding \(padding) must be between 0 and half the kernel size \(kernel)")
        planes = shape[0] * shape[1]; height = shape[2]; width = shape[3]
        precondition(height + 2 * padding >= kernel && width + 2 * padding >= kernel,
                     "\(op): kernel \(kernel) does not fit input \(height)×\(width) with padding \(padding)")
        self.kernel = kernel; self.stride = stride; self.padding = padding
        outHeight = (height + 2 * padding - kernel) / stride + 1
        outWidth = (width + 2 * padding - kernel) / stride + 1
    }

    var outShape: (Int, Int) { (outHeight, outWidth) }

    /// The in-image part [lo, hi) of the window starting at output index `o` along a side of `size`.
    @inline(__always)
    func window(_ o: Int, size: Int) -> (Int, Int) {
        let start = o * stride - padding
        return (max(start, 0), min(start + kernel, size))
    }

    /// Runs `body(plane)` for every plane across cores.
    func forEachPlane(_ body: (Int) -> Void) {
        let work = max(outHeight * outWidth * kernel * kernel, 1)
        Parallel.forRange(planes, grain: max(1, 32768 / work)) { r in for plane in r { body(plane) } }
    }
}

extension Tensor {
    /// Maximum over kernel×kernel windows, like `F.max_pool2d(x, kernel, stride, padding)`:
    /// padding cells never win, NaN propagates, ties go to the first element in row-major order.
    public func maxPool2d(kernel: Int, stride: Int, padding: Int = 0) -> Tensor {
        let geo = PoolGeometry("maxPool2d", shape: shape, kernel: kernel, stride: stride, padding: padding)
        let (oh, ow) = geo.outShape
        let out = Tensor(uninitialized: [shape[0], shape[1], oh, ow])
        let needsIndices = GradMode.isEnabled && requiresGrad
        // Flat in-plane index of each output's winner, kept only for backward.
        let winners = IndexBuffer(count: needsIndices ? out.count : 0)
        let src = pointer, dst = out.pointer, idx = winners.pointer
        let (h, w) = (geo.height, geo.width)
        geo.forEachPlane { plane in
            let s = src + plane * h * w, d = dst + plane * oh * ow
            for y in 0..<oh {
                let (y0, y1) = geo.window(y, size: h)
                for x in 0..<ow {
                    let (x0, x1) = geo.window(x, size: w)
                    var best = -Float.infinity, at = y0 * w + x0
                    for iy in y0..<y1 {
                        for ix in x0..<x1 {
                            let v = s[iy * w + ix]
                            if v > best || v.isNaN { best = v; at = iy * w + ix }
                        }
                    }
                    d[y * ow + x] = best
                    if needsIndices { idx[(plane * oh + y) * ow + x] = Int32(truncatingIfNeeded: at) }
                }
            }
        }
        let inShape = shape
        return out.recorded("maxPool2d", inputs: [self]) { g in
            let gx = Tensor(zeros: inShape)
            let gp = g.pointer, gxp = gx.pointer, idx = winners.pointer
            Parallel.forRange(geo.planes, grain: max(1, 16384 / max(oh * ow, 1))) { r in
                for plane in r {
                    let gi = gxp + plane * h * w
                    for o in plane * oh * ow ..< (plane + 1) * oh * ow { gi[Int(idx[o])] += gp[o] }
                }
            }
            return [gx]
        }
    }

    /// Mean over kernel×kernel windows, like `F.avg_pool2d(x, kernel, stride, padding)` with
    /// count_include_pad=True: padding cells count as zeros, so the divisor is always kernel².
    public func avgPool2d(kernel: Int, stride: Int, padding: Int = 0) -> Tensor {
        let geo = PoolGeometry("avgPool2d", shape: shape, kernel: kernel, stride: stride, padding: padding)
        let (oh, ow) = geo.outShape
        let out = Tensor(uninitialized: [shape[0], shape[1], oh, ow])
        let (h, w) = (geo.height, geo.width)
        let scale = 1 / Float(kernel * kernel)
        let src = pointer, dst = out.pointer
        geo.forEachPlane { plane in
            let s = src + plane * h * w, d = dst + plane * oh * ow
            for y in 0..<oh {
                let (y0, y1) = geo.window(y, size: h)
                for x in 0..<ow {
                    let (x0, x1) = geo.window(x, size: w)
                    var sum: Float = 0
                    for iy in y0..<y1 { for ix in x0..<x1 { sum += s[iy * w + ix] } }
                    d[y * ow + x] = sum * scale
                }
            }
        }
        let inShape = shape
        return out.recorded("avgPool2d", inputs: [self]) { g in
            let gx = Tensor(zeros: inShape)
            let gp = g.pointer, gxp = gx.pointer
            geo.forEachPlane { plane in
                let gi = gxp + plane * h * w, go = gp + plane * oh * ow
                for y in 0..<oh {
                    let (y0, y1) = geo.window(y, size: h)
                    for x in 0..<ow {
                        let (x0, x1) = geo.window(x, size: w)
                        let v = go[y * ow + x] * scale
                        for iy in y0..<y1 { for ix in x0..<x1 { gi[iy * w + ix] += v } }
                    }
                }
            }
            return [gx]
        }
    }
}

/// A heap block of Int32 that lives as long as the backward closure holding it.
final class IndexBuffer: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Int32>
    init(count: Int) { pointer = .allocate(capacity: max(count, 1)) }
    deinit { pointer.deallocate() }
}
