// 2-D convolution (PyTorch's F.conv2d without groups or dilation) as im2col + GEMM.
//
// Each image is one GEMM: Y[Cout, P] = W[Cout, K] · cols[K, P] with K = Cin·kh·kw and
// P = Hout·Wout. With at least two images, images are split across cores, each core running
// single-threaded BLAS on its own column buffer (which stays in cache between im2col and the
// GEMM); a single image uses BLAS's threads instead. Backward recomputes the columns rather
// than keeping a K×P matrix per image alive in the graph.

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
        Conv2dKernels.forward(geo, input: pointer, weight: weight.pointer, bias: bias?.pointer, output: out.pointer)
        let x = self
        let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
        return out.recorded("conv2d", inputs: inputs) { g in
            let grads = Conv2dKernels.backward(geo, input: x, weight: weight, gradOutput: g,
                                               needInput: x.requiresGrad, needWeight: weight.requiresGrad,
                                               needBias: bias?.requiresGrad ?? false)
            return bias == nil ? [grads.input, grads.weight] : [grads.input, grads.weight, grads.bias]
        }
    }
}

enum Conv2dKernels {
    /// Runs `body(images, parallelInside)` over all images: contiguous image ranges on separate
    /// cores with single-threaded BLAS when there are several images, else one call that may
    /// use BLAS threads and parallel im2col itself.
    static func forEachImageChunk(_ batch: Int, _ body: (Range<Int>, _ chunk: Int, _ parallelInside: Bool) -> Void) {
        let chunks = chunkCount(batch)
        if chunks <= 1 {
            body(0..<batch, 0, true)
            return
        }
        BLAS.singleThreaded {
            Parallel.forEach(chunks) { c in
                body(batch * c / chunks ..< batch * (c + 1) / chunks, c, false)
            }
        }
    }

    /// Cores that get whole images. A small batch that does not split evenly (3 images on 2
    /// cores) would leave a core idle for a whole image, so it runs image by image on all cores.
    static func chunkCount(_ batch: Int) -> Int {
        let threads = max(Parallel.threadCount, 1)
        if batch < threads || (batch % threads != 0 && batch < 4 * threads) { return 1 }
        return min(threads, batch)
    }

    static func im2col(_ geo: ConvGeometry, image: UnsafePointer<Float>, columns: UnsafeMutablePointer<Float>, parallel: Bool) {
        if parallel {
            Parallel.forRange(geo.inChannels, grain: 1) { geo.im2col(image: image, columns: columns, channels: $0) }
        } else {
            geo.im2col(image: image, columns: columns, channels: 0..<geo.inChannels)
        }
    }

    static func forward(_ geo: ConvGeometry, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                        bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>) {
        let k = geo.columnRows, p = geo.outPixels, cout = geo.outChannels
        let inStride = geo.inChannels * geo.inPixels, outStride = cout * p
        forEachImageChunk(geo.batch) { images, _, parallelInside in
            let scratch = geo.isPointwise ? nil : TensorStorage(count: k * p, zeroed: false)
            for n in images {
                let y = output + n * outStride
                if let bias {
                    for co in 0..<cout { (y + co * p).update(repeating: bias[co], count: p) }
                }
                let columns: UnsafePointer<Float>
                if let scratch {
                    im2col(geo, image: input + n * inStride, columns: scratch.pointer, parallel: parallelInside)
                    columns = UnsafePointer(scratch.pointer)
                } else {
                    columns = input + n * inStride
                }
                BLAS.sgemm(transposeA: false, transposeB: false, m: cout, n: p, k: k,
                           a: weight, lda: k, b: columns, ldb: p, beta: bias == nil ? 0 : 1, c: y, ldc: p)
            }
        }
    }

    struct Gradients { var input: Tensor?, weight: Tensor?, bias: Tensor? }

    static func backward(_ geo: ConvGeometry, input x: Tensor, weight: Tensor, gradOutput g: Tensor,
                         needInput: Bool, needWeight: Bool, needBias: Bool) -> Gradients {
        let k = geo.columnRows, p = geo.outPixels, cout = geo.outChannels
        let inStride = geo.inChannels * geo.inPixels, outStride = cout * p
        let chunks = chunkCount(geo.batch)
        let gx = needInput ? Tensor(uninitialized: x.shape) : nil
        // One weight/bias accumulator per chunk, summed afterwards: no sharing between cores.
        // The first image of a chunk overwrites its weight accumulator, so only an empty batch
        // needs zeros.
        let weightPartials = needWeight ? (0..<chunks).map { _ in TensorStorage(count: cout * k, zeroed: geo.batch == 0) } : []
        let biasPartials = needBias ? (0..<chunks).map { _ in TensorStorage(count: cout, zeroed: true) } : []
        let xp = x.pointer, wp = weight.pointer, gp = g.pointer
        forEachImageChunk(geo.batch) { images, chunk, parallelInside in
            let scratch = geo.isPointwise || !(needInput || needWeight) ? nil : TensorStorage(count: k * p, zeroed: false)
            for n in images {
                let dy = gp + n * outStride
                if needBias {
                    let db = biasPartials[chunk].pointer
                    for co in 0..<cout { db[co] += sumOf(dy + co * p, count: p) }
                }
                if needWeight {
                    // dW[Cout, K] += dY[Cout, P] · colsᵀ[P, K]
                    let columns: UnsafePointer<Float>
                    if let scratch {
                        im2col(geo, image: xp + n * inStride, columns: scratch.pointer, parallel: parallelInside)
                        columns = UnsafePointer(scratch.pointer)
                    } else {
                        columns = UnsafePointer(xp + n * inStride)
                    }
                    BLAS.sgemm(transposeA: false, transposeB: true, m: cout, n: k, k: p,
                               a: dy, lda: p, b: columns, ldb: p, beta: n == images.lowerBound ? 0 : 1,
                               c: weightPartials[chunk].pointer, ldc: k)
                }
                if let gx {
                    // dcols[K, P] = Wᵀ[K, Cout] · dY[Cout, P], then scattered back onto pixels.
                    let dx = gx.pointer + n * inStride
                    if let scratch {
                        BLAS.sgemm(transposeA: true, transposeB: false, m: k, n: p, k: cout,
                                   a: wp, lda: k, b: dy, ldb: p, c: scratch.pointer, ldc: p)
                        dx.update(repeating: 0, count: inStride)
                        if parallelInside {
                            Parallel.forRange(geo.inChannels, grain: 1) {
                                geo.col2im(columns: scratch.pointer, image: dx, channels: $0)
                            }
                        } else {
                            geo.col2im(columns: scratch.pointer, image: dx, channels: 0..<geo.inChannels)
                        }
                    } else {
                        BLAS.sgemm(transposeA: true, transposeB: false, m: k, n: p, k: cout,
                                   a: wp, lda: k, b: dy, ldb: p, c: dx, ldc: p)
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

    static func sumPartials(_ partials: [TensorStorage], shape: [Int]) -> Tensor {
        let out = Tensor(shape: shape, storage: partials.first!)
        for extra in partials.dropFirst() {
            let o = out.pointer, e = extra.pointer
            for i in 0..<out.count { o[i] += e[i] }
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
