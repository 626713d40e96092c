// 2-D convolution (PyTorch's F.conv2d without groups or dilation). The op and its gradient
// rule go through the compute backend (ComputeBackend.swift); what follows is the OpenBLAS
// backend's kernels, im2col + GEMM.
//
// Each image is one GEMM: Y[Cout, P] = W[Cout, K] · cols[K, P] with K = Cin·kh·kw and
// P = Hout·Wout. Small feature maps put several images' columns side by side in one GEMM
// (`imagesPerGemm`), so deep layers at 2×2 or 4×4 do not re-read the weights per image.
// With at least two images, images are split across cores, each core running single-threaded
// BLAS on its own column buffer (which stays in cache between im2col and the GEMM); a single
// image uses BLAS's threads instead. Backward recomputes the columns rather than keeping a
// K×P matrix per image alive in the graph.

extension Tensor {
    /// Cross-correlation of NCHW `self` [N, Cin, H, W] with `weight` [Cout, Cin, kh, kw] plus
    /// optional `bias` [Cout], like `F.conv2d(x, weight, bias, stride, padding)`; asymmetric
    /// zero padding is allowed. Returns [N, Cout, Hout, Wout].
    public func conv2d(weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Padding2D = .init(0)) -> Tensor {
        let geo = ConvGeometry(input: shape, weight: weight.shape, stride: stride, padding: padding)
        if let bias {
            precondition(bias.shape == [geo.outChannels],
                         "conv2d: bias must have shape [\(geo.outChannels)] for weight \(weight.shape), got \(bias.shape)")
        }
        let out = Tensor(uninitialized: [geo.batch, geo.outChannels, geo.outHeight, geo.outWidth])
        let inputs = bias.map { [self, weight, $0] } ?? [self, weight]
        // The weight gradient reads the input again: the backend may keep its own copy of it.
        // The backward reads the weight through the forward's layout cache.
        let layouts = WeightLayoutCache.current
        let saved = ComputeBackends.current.conv2dForward(geo, input: pointer, weight: weight, bias: bias?.pointer,
                                                          output: out.pointer,
                                                          keepForBackward: GradMode.isEnabled && weight.requiresGrad,
                                                          layouts: layouts)
        let x = self
        return out.recorded("conv2d", inputs: inputs) { g in
            let grads = ComputeBackends.current.conv2dBackward(geo, input: x, weight: weight, gradOutput: g, saved: saved,
                                                               needInput: x.requiresGrad, needWeight: weight.requiresGrad,
                                                               needBias: bias?.requiresGrad ?? false, layouts: layouts)
            return bias == nil ? [grads.input, grads.weight] : [grads.input, grads.weight, grads.bias]
        }
    }
}

enum Conv2dKernels {
    /// Runs `body(groups, parallelInside)` so that every group in `0..<groups` is handled once,
    /// where group g owns images `images(ofGroup: g)`. With several cores, contiguous group
    /// ranges go to separate cores running single-threaded BLAS; when that would leave a core
    /// idle for long (3 images on 2 cores), everything runs in one call that uses all cores
    /// inside (threaded BLAS, parallel im2col).
    static func forEachGroupRange(batch: Int, groups: Int, _ body: (Range<Int>, _ parallelInside: Bool) -> Void) {
        let threads = min(max(Parallel.threadCount, 1), groups)
        var busiest = 0  // images on the most loaded core
        for c in 0..<max(threads, 1) where threads > 1 {
            let g0 = groups * c / threads, g1 = groups * (c + 1) / threads
            busiest = max(busiest, batch * g1 / groups - batch * g0 / groups)
        }
        if threads <= 1 || Double(busiest * threads) > 1.15 * Double(batch) {
            body(0..<groups, true)
            return
        }
        BLAS.singleThreaded {
            Parallel.forEach(threads) { c in body(groups * c / threads ..< groups * (c + 1) / threads, false) }
        }
    }

    @inline(__always)
    static func images(ofGroup g: Int, batch: Int, groups: Int) -> Range<Int> {
        batch * g / groups ..< batch * (g + 1) / groups
    }

    /// Image groups whose weight/bias gradients are accumulated separately and then added in
    /// group order. It depends only on the shapes, never on the core count, so gradients are
    /// bit-identical however many threads run. A power of two (splits evenly over 2ⁿ cores),
    /// capped so the partial sums stay within about 16 MiB unless that would serialise, and so
    /// a group holds at least one full stack of images when maps are small.
    static func accumulationGroups(batch: Int, weightCount: Int, imagesPerGemm: Int = 1) -> Int {
        let cap = max(2, (4 << 20) / max(weightCount, 1))
        let stacks = max(2, batch / max(imagesPerGemm, 1))
        var g = 1
        while g * 2 <= min(batch, cap, stacks) { g *= 2 }
        return g
    }

    static func im2col(_ geo: ConvGeometry, image: UnsafePointer<Float>, columns: UnsafeMutablePointer<Float>,
                       rows: Range<Int>, pitch: Int? = nil, parallel: Bool) {
        if parallel {
            Parallel.forRange(geo.inChannels, grain: 1) {
                geo.im2col(image: image, columns: columns, channels: $0, rows: rows, pitch: pitch)
            }
        } else {
            geo.im2col(image: image, columns: columns, channels: 0..<geo.inChannels, rows: rows, pitch: pitch)
        }
    }

    static func col2im(_ geo: ConvGeometry, columns: UnsafePointer<Float>, image: UnsafeMutablePointer<Float>,
                       rows: Range<Int>, pitch: Int? = nil, parallel: Bool) {
        if parallel {
            Parallel.forRange(geo.inChannels, grain: 1) {
                geo.col2im(columns: columns, image: image, channels: $0, rows: rows, pitch: pitch)
            }
        } else {
            geo.col2im(columns: columns, image: image, channels: 0..<geo.inChannels, rows: rows, pitch: pitch)
        }
    }

    /// Splits `images` into consecutive runs of at most `perGemm` images of near-equal size.
    static func stacks(of images: Range<Int>, perGemm: Int) -> [Range<Int>] {
        let count = (images.count + perGemm - 1) / perGemm
        return (0..<count).map {
            images.lowerBound + images.count * $0 / count ..< images.lowerBound + images.count * ($0 + 1) / count
        }
    }

    static func forward(_ geo: ConvGeometry, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                        bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>) {
        let k = geo.columnRows, p = geo.outPixels, cout = geo.outChannels, ow = geo.outWidth
        let inStride = geo.inChannels * geo.inPixels, outStride = cout * p
        let blocks = geo.rowBlocks
        if geo.imagesPerGemm > 1 {
            forwardStacked(geo, input: input, weight: weight, bias: bias, output: output)
            return
        }
        // Each image is its own group: forward has nothing to accumulate across images.
        forEachGroupRange(batch: geo.batch, groups: geo.batch) { images, parallelInside in
            let scratch = geo.isPointwise ? nil : TensorStorage(count: k * geo.rowsPerBlock * ow, zeroed: false)
            for n in images {
                let y = output + n * outStride, image = input + n * inStride
                if let bias {
                    for co in 0..<cout { (y + co * p).update(repeating: bias[co], count: p) }
                }
                let beta: Float = bias == nil ? 0 : 1
                guard let scratch else {
                    BLAS.sgemm(transposeA: false, transposeB: false, m: cout, n: p, k: k,
                               a: weight, lda: k, b: image, ldb: p, beta: beta, c: y, ldc: p)
                    continue
                }
                for rows in blocks {
                    // Y[:, band] = W · cols(band)
                    let width = rows.count * ow
                    im2col(geo, image: image, columns: scratch.pointer, rows: rows, parallel: parallelInside)
                    BLAS.sgemm(transposeA: false, transposeB: false, m: cout, n: width, k: k,
                               a: weight, lda: k, b: scratch.pointer, ldb: width,
                               beta: beta, c: y + rows.lowerBound * ow, ldc: p)
                }
            }
        }
    }

    /// The column matrices of `images`, side by side: [K, images.count·P].
    static func stackedColumns(_ geo: ConvGeometry, images: Range<Int>, input: UnsafePointer<Float>,
                               columns: UnsafeMutablePointer<Float>, parallel: Bool) {
        let p = geo.outPixels, inStride = geo.inChannels * geo.inPixels
        for (j, n) in images.enumerated() {
            im2col(geo, image: input + n * inStride, columns: columns + j * p, rows: 0..<geo.outHeight,
                   pitch: images.count * p, parallel: parallel)
        }
    }

    /// Forward for small maps: Y[Cout, b·P] = W · [cols(n₁) … cols(n_b)], then each image's
    /// slice is copied out. The bias is added as in the per-image GEMM (beta = 1); the last
    /// bits may differ from it, since BLAS picks its kernels by the product's width.
    static func forwardStacked(_ geo: ConvGeometry, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                               bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>) {
        let k = geo.columnRows, p = geo.outPixels, cout = geo.outChannels, perGemm = geo.imagesPerGemm
        let outStride = cout * p
        let chunks = (geo.batch + perGemm - 1) / perGemm
        forEachGroupRange(batch: geo.batch, groups: chunks) { chunkRange, parallelInside in
            let columns = TensorStorage(count: k * perGemm * p, zeroed: false)
            let product = TensorStorage(count: cout * perGemm * p, zeroed: false)
            for chunk in chunkRange {
                let images = images(ofGroup: chunk, batch: geo.batch, groups: chunks)
                let width = images.count * p
                stackedColumns(geo, images: images, input: input, columns: columns.pointer, parallel: parallelInside)
                if let bias {
                    for co in 0..<cout { (product.pointer + co * width).update(repeating: bias[co], count: width) }
                }
                BLAS.sgemm(transposeA: false, transposeB: false, m: cout, n: width, k: k,
                           a: weight, lda: k, b: columns.pointer, ldb: width, beta: bias == nil ? 0 : 1,
                           c: product.pointer, ldc: width)
                for (j, n) in images.enumerated() {
                    for co in 0..<cout {
                        (output + n * outStride + co * p).update(from: product.pointer + co * width + j * p, count: p)
                    }
                }
            }
        }
    }

    struct Gradients { var input: Tensor?, weight: Tensor?, bias: Tensor? }

    static func backward(_ geo: ConvGeometry, input x: Tensor, weight: Tensor, gradOutput g: Tensor,
                         needInput: Bool, needWeight: Bool, needBias: Bool) -> Gradients {
        let k = geo.columnRows, p = geo.outPixels, cout = geo.outChannels, ow = geo.outWidth
        let inStride = geo.inChannels * geo.inPixels, outStride = cout * p
        let blocks = geo.rowBlocks
        let groups = accumulationGroups(batch: geo.batch, weightCount: cout * k, imagesPerGemm: geo.imagesPerGemm)
        let gx = needInput ? Tensor(uninitialized: x.shape) : nil
        // One weight/bias partial per group; the first image of a group overwrites its partial,
        // so only an empty batch needs zeros.
        let weightPartials = needWeight ? (0..<max(groups, 1)).map { _ in TensorStorage(count: cout * k, zeroed: geo.batch == 0) } : []
        let biasPartials = needBias ? (0..<max(groups, 1)).map { _ in TensorStorage(count: cout, zeroed: true) } : []
        let xp = x.pointer, wp = weight.pointer, gp = g.pointer
        if geo.imagesPerGemm > 1 {
            forEachGroupRange(batch: geo.batch, groups: groups) { groupRange, parallelInside in
                for group in groupRange {
                    backwardStacked(geo, images: images(ofGroup: group, batch: geo.batch, groups: groups),
                                    input: xp, weight: wp, gradOutput: gp, gradInput: gx?.pointer,
                                    weightPartial: needWeight ? weightPartials[group].pointer : nil,
                                    biasPartial: needBias ? biasPartials[group].pointer : nil, parallel: parallelInside)
                }
            }
            return Gradients(input: gx,
                             weight: needWeight ? sumPartials(weightPartials, shape: weight.shape) : nil,
                             bias: needBias ? sumPartials(biasPartials, shape: [cout]) : nil)
        }
        forEachGroupRange(batch: geo.batch, groups: groups) { groupRange, parallelInside in
            let scratch = geo.isPointwise || !(needInput || needWeight)
                ? nil : TensorStorage(count: k * geo.rowsPerBlock * ow, zeroed: false)
            for group in groupRange {
                let images = images(ofGroup: group, batch: geo.batch, groups: groups)
                for n in images {
                    let dy = gp + n * outStride, image = xp + n * inStride
                    if needBias {
                        let db = biasPartials[group].pointer
                        for co in 0..<cout { db[co] += sumOf(dy + co * p, count: p) }
                    }
                    let dx = gx.map { $0.pointer + n * inStride }
                    guard let scratch else {
                        // Pointwise: the image itself is the column matrix.
                        if needWeight {
                            BLAS.sgemm(transposeA: false, transposeB: true, m: cout, n: k, k: p,
                                       a: dy, lda: p, b: image, ldb: p, beta: n == images.lowerBound ? 0 : 1,
                                       c: weightPartials[group].pointer, ldc: k)
                        }
                        if let dx {
                            BLAS.sgemm(transposeA: true, transposeB: false, m: k, n: p, k: cout,
                                       a: wp, lda: k, b: dy, ldb: p, c: dx, ldc: p)
                        }
                        continue
                    }
                    dx?.update(repeating: 0, count: inStride)
                    for rows in blocks {
                        let width = rows.count * ow, dyBand = dy + rows.lowerBound * ow
                        if needWeight {
                            // dW[Cout, K] += dY[:, band] · cols(band)ᵀ
                            im2col(geo, image: image, columns: scratch.pointer, rows: rows, parallel: parallelInside)
                            let first = n == images.lowerBound && rows.lowerBound == 0
                            BLAS.sgemm(transposeA: false, transposeB: true, m: cout, n: k, k: width,
                                       a: dyBand, lda: p, b: scratch.pointer, ldb: width, beta: first ? 0 : 1,
                                       c: weightPartials[group].pointer, ldc: k)
                        }
                        if let dx {
                            // dcols(band) = Wᵀ · dY[:, band], then scattered back onto pixels.
                            BLAS.sgemm(transposeA: true, transposeB: false, m: k, n: width, k: cout,
                                       a: wp, lda: k, b: dyBand, ldb: p, c: scratch.pointer, ldc: width)
                            col2im(geo, columns: scratch.pointer, image: dx, rows: rows, parallel: parallelInside)
                        }
                    }
                }
            }
        }
        var result = Gradients()
        result.input = gx
        if needWeight { result.weight = sumPartials(weightPartials, shape: weight.shape) }
        if needBias { result.bias = sumPartials(biasPartials, shape: [cout]) }
        return result
    }

    /// Backward of one accumulation group for small maps, a stack of images per GEMM:
    /// dW += dY[Cout, b·P] · colsᵀ and dcols = Wᵀ · dY, scattered back per image.
    static func backwardStacked(_ geo: ConvGeometry, images group: Range<Int>, input: UnsafePointer<Float>,
                                weight: UnsafePointer<Float>, gradOutput: UnsafePointer<Float>,
                                gradInput: UnsafeMutablePointer<Float>?, weightPartial: UnsafeMutablePointer<Float>?,
                                biasPartial: UnsafeMutablePointer<Float>?, parallel: Bool) {
        let k = geo.columnRows, p = geo.outPixels, cout = geo.outChannels, perGemm = geo.imagesPerGemm
        let inStride = geo.inChannels * geo.inPixels, outStride = cout * p
        let columns = TensorStorage(count: k * perGemm * p, zeroed: false)
        let stackedGrad = TensorStorage(count: cout * perGemm * p, zeroed: false)
        for (s, images) in stacks(of: group, perGemm: perGemm).enumerated() {
            let width = images.count * p, dy = stackedGrad.pointer
            for (j, n) in images.enumerated() {
                let dyImage = gradOutput + n * outStride
                if let biasPartial {
                    for co in 0..<cout { biasPartial[co] += sumOf(dyImage + co * p, count: p) }
                }
                for co in 0..<cout { (dy + co * width + j * p).update(from: dyImage + co * p, count: p) }
            }
            if let weightPartial {
                stackedColumns(geo, images: images, input: input, columns: columns.pointer, parallel: parallel)
                BLAS.sgemm(transposeA: false, transposeB: true, m: cout, n: k, k: width,
                           a: dy, lda: width, b: columns.pointer, ldb: width, beta: s == 0 ? 0 : 1,
                           c: weightPartial, ldc: k)
            }
            if let gradInput {
                BLAS.sgemm(transposeA: true, transposeB: false, m: k, n: width, k: cout,
                           a: weight, lda: k, b: dy, ldb: width, c: columns.pointer, ldc: width)
                for (j, n) in images.enumerated() {
                    let dx = gradInput + n * inStride
                    dx.update(repeating: 0, count: inStride)
                    col2im(geo, columns: columns.pointer + j * p, image: dx, rows: 0..<geo.outHeight,
                           pitch: width, parallel: parallel)
                }
            }
        }
    }

    /// partials[0] + partials[1] + … in that order for every element (the order never depends
    /// on how elements are split across cores), as a tensor that reuses partials[0]'s storage.
    static func sumPartials(_ partials: [TensorStorage], shape: [Int]) -> Tensor {
        let out = Tensor(shape: shape, storage: partials[0])
        if partials.count > 1 {
            let o = out.pointer
            let rest = partials.dropFirst().map(\.pointer)
            Parallel.forRange(out.count, grain: 16384) { r in
                for e in rest { for i in r { o[i] += e[i] } }
            }
        }
        return out
    }

    /// Σ p[0..<count], with eight independent accumulators so the loop vectorises.
    @inline(__always)
    static func sumOf(_ p: UnsafePointer<Float>, count: Int) -> Float {
        var acc = SIMD8<Float>()
        var i = 0
        while i + 8 <= count {
            acc += UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
            i += 8
        }
        var s = acc.sum()
        while i < count { s += p[i]; i += 1 }
        return s
    }
}
