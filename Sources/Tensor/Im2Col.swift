// The column layout that turns a convolution into a matrix product, and its adjoint.
//
// For one image [C, H, W], row (c·kh + i)·kw + j of the column matrix [C·kh·kw, Hout·Wout]
// holds the input pixel that kernel tap (i, j) of channel c sees at every output position.
// Padding is folded in here: out-of-image taps read as zero, so no padded copy is made.

/// Everything about a 2-D convolution's shapes that the kernels need.
struct ConvGeometry {
    let batch: Int, inChannels: Int, height: Int, width: Int
    let outChannels: Int, kernelHeight: Int, kernelWidth: Int
    let stride: Int, padding: Padding2D
    let outHeight: Int, outWidth: Int

    init(input: [Int], weight: [Int], stride: Int, padding: Padding2D) {
        precondition(input.count == 4, "conv2d: input must be NCHW (rank 4), got shape \(input)")
        precondition(weight.count == 4, "conv2d: weight must be [Cout, Cin, kh, kw], got shape \(weight)")
        precondition(input[1] == weight[1],
                     "conv2d: input has \(input[1]) channels (shape \(input)) but weight expects \(weight[1]) (shape \(weight))")
        precondition(stride >= 1, "conv2d: stride must be ≥ 1, got \(stride)")
        batch = input[0]; inChannels = input[1]; height = input[2]; width = input[3]
        outChannels = weight[0]; kernelHeight = weight[2]; kernelWidth = weight[3]
        self.stride = stride
        self.padding = padding
        let paddedH = height + padding.top + padding.bottom, paddedW = width + padding.left + padding.right
        precondition(kernelHeight >= 1 && kernelWidth >= 1 && paddedH >= kernelHeight && paddedW >= kernelWidth,
                     "conv2d: kernel \(kernelHeight)×\(kernelWidth) does not fit input \(height)×\(width) with \(padding)")
        outHeight = (paddedH - kernelHeight) / stride + 1
        outWidth = (paddedW - kernelWidth) / stride + 1
    }

    /// Rows of the column matrix (the GEMM's inner dimension).
    var columnRows: Int { inChannels * kernelHeight * kernelWidth }
    /// Output positions per image (columns of the column matrix).
    var outPixels: Int { outHeight * outWidth }
    var inPixels: Int { height * width }

    /// A 1×1, stride-1, unpadded convolution is a plain matrix product with the image itself.
    var isPointwise: Bool { kernelHeight == 1 && kernelWidth == 1 && stride == 1 && padding.isZero }

    /// Upper bound on one column block's size in floats (8 MiB per core): large images are
    /// processed in bands of output rows so scratch memory stays bounded and cache-sized.
    static var maxColumnFloats = 2 << 20

    /// Output rows per column block: the whole image unless that exceeds `maxColumnFloats`.
    var rowsPerBlock: Int {
        max(1, min(outHeight, ConvGeometry.maxColumnFloats / max(columnRows * outWidth, 1)))
    }

    /// Columns a GEMM should have before it runs near full speed: narrower products re-stream
    /// the whole weight matrix for a handful of output pixels.
    static var targetGemmColumns = 512

    /// Images whose column matrices sit side by side in one GEMM. Small feature maps (a 2×2
    /// map is 4 columns per image) are stacked until the product is about `targetGemmColumns`
    /// wide; images that need row bands, or are wide enough alone, go one at a time. Fixed by
    /// the shapes alone, like everything that decides accumulation order.
    var imagesPerGemm: Int {
        guard outHeight <= rowsPerBlock, outPixels < ConvGeometry.targetGemmColumns else { return 1 }
        let byWidth = ConvGeometry.targetGemmColumns / max(outPixels, 1)
        let byMemory = ConvGeometry.maxColumnFloats / max(columnRows * outPixels, 1)
        return max(1, min(batch, byWidth, byMemory))
    }

    /// Output row bands, fixed by the shapes alone (so accumulation order never depends on cores).
    var rowBlocks: [Range<Int>] {
        let step = rowsPerBlock
        return Swift.stride(from: 0, to: outHeight, by: step).map { $0 ..< min($0 + step, outHeight) }
    }

    /// The output columns [lo, hi) whose tap at horizontal offset `j` lands inside the image.
    @inline(__always)
    func validColumns(tap j: Int) -> (Int, Int) {
        let offset = padding.left - j  // iw = ow·stride − offset
        let lo = offset <= 0 ? 0 : (offset + stride - 1) / stride
        let last = width - 1 + offset  // largest ow·stride allowed
        let hi = last < 0 ? 0 : min(outWidth, last / stride + 1)
        return (min(lo, hi), hi)
    }

    /// Fills the rows for `channels` of the column block covering output rows `rows` of one
    /// image; the block is [C·kh·kw, rows.count·Wout] with rows `pitch` floats apart (wider
    /// when several images sit side by side in one column matrix).
    func im2col(image: UnsafePointer<Float>, columns: UnsafeMutablePointer<Float>, channels: Range<Int>, rows: Range<Int>,
                pitch: Int? = nil) {
        let h = height, w = width, ow = outWidth, s = stride
        let p = pitch ?? rows.count * ow
        for c in channels {
            let plane = image + c * h * w
            for i in 0..<kernelHeight {
                for j in 0..<kernelWidth {
                    let row = columns + ((c * kernelHeight + i) * kernelWidth + j) * p
                    let (lo, hi) = validColumns(tap: j)
                    let shift = j - padding.left
                    for y in rows {
                        let dst = row + (y - rows.lowerBound) * ow
                        let iy = y * s - padding.top + i
                        if iy < 0 || iy >= h || lo == hi {
                            dst.update(repeating: 0, count: ow)
                            continue
                        }
                        if lo > 0 { dst.update(repeating: 0, count: lo) }
                        if hi < ow { (dst + hi).update(repeating: 0, count: ow - hi) }
                        let src = plane + iy * w + shift
                        if s == 1 {
                            (dst + lo).update(from: src + lo, count: hi - lo)
                        } else {
                            for x in lo..<hi { dst[x] = src[x * s] }
                        }
                    }
                }
            }
        }
    }

    /// Adds a column block's gradient (output rows `rows`) back onto image pixels for
    /// `channels` (the adjoint of `im2col`, same `pitch`). `image` must hold zeros or earlier
    /// contributions.
    func col2im(columns: UnsafePointer<Float>, image: UnsafeMutablePointer<Float>, channels: Range<Int>, rows: Range<Int>,
                pitch: Int? = nil) {
        let h = height, w = width, ow = outWidth, s = stride
        let p = pitch ?? rows.count * ow
        for c in channels {
            let plane = image + c * h * w
            for i in 0..<kernelHeight {
                for j in 0..<kernelWidth {
                    let row = columns + ((c * kernelHeight + i) * kernelWidth + j) * p
                    let (lo, hi) = validColumns(tap: j)
                    if lo == hi { continue }
                    let shift = j - padding.left
                    for y in rows {
                        let iy = y * s - padding.top + i
                        if iy < 0 || iy >= h { continue }
                        let src = row + (y - rows.lowerBound) * ow
                        let dst = plane + iy * w + shift
                        if s == 1 {
                            for x in lo..<hi { dst[x] += src[x] }
                        } else {
                            for x in lo..<hi { dst[x * s] += src[x] }
                        }
                    }
                }
            }
        }
    }
}
