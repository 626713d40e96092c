import CDNNL

// One convolution shape on oneDNN: its forward, backward-data and backward-weights primitives
// and the reorders between our NCHW/OIHW tensors and the blocked layouts the primitives pick
// (`dnnl_format_tag_any`: on AVX-512, channels in blocks of 16). Created once per shape and
// algorithm and kept by the backend; every call stages its tensors through pooled scratch
// buffers. Winograd is asked for first where `ConvolutionAlgorithm` says so; a pass oneDNN has
// no Winograd kernel for (or a machine without AVX-512) runs the direct one.

final class OneDNNConvolution: @unchecked Sendable {
    let geo: ConvGeometry
    let hasBias: Bool
    /// The forward's algorithm (dnnl_convolution_winograd or dnnl_convolution_direct).
    let algorithm: dnnl_alg_kind_t
    private let window: ldm_conv_window
    private let src: dnnl_memory_desc_t, weights: dnnl_memory_desc_t, dst: dnnl_memory_desc_t, bias: dnnl_memory_desc_t

    let forward: OneDNNPrimitive
    private let forwardSrc: OneDNNReorder, forwardWeights: OneDNNReorder, forwardDst: OneDNNReorder

    init(_ geo: ConvGeometry, hasBias: Bool, preferring preference: ConvolutionAlgorithm) throws {
        self.geo = geo
        self.hasBias = hasBias
        let window = ldm_conv_window(stride: Int64(geo.stride), top: Int64(geo.padding.top), left: Int64(geo.padding.left),
                                     bottom: Int64(geo.padding.bottom), right: Int64(geo.padding.right))
        self.window = window
        src = OneDNN.plain(geo.batch, geo.inChannels, geo.height, geo.width, dnnl_nchw)
        weights = OneDNN.plain(geo.outChannels, geo.inChannels, geo.kernelHeight, geo.kernelWidth, dnnl_oihw)
        dst = OneDNN.plain(geo.batch, geo.outChannels, geo.outHeight, geo.outWidth, dnnl_nchw)
        let bias = OneDNN.vector(geo.outChannels)
        self.bias = bias
        let candidates = preference.triesWinograd(geo) ? [dnnl_convolution_winograd, dnnl_convolution_direct]
                                                       : [dnnl_convolution_direct]
        let (forward, algorithm) = try Self.firstTaken(candidates) { alg in
            var anySrc = OneDNN.plain(geo.batch, geo.inChannels, geo.height, geo.width, dnnl_format_tag_any)
            var anyWeights = OneDNN.plain(geo.outChannels, geo.inChannels, geo.kernelHeight, geo.kernelWidth, dnnl_format_tag_any)
            var anyDst = OneDNN.plain(geo.batch, geo.outChannels, geo.outHeight, geo.outWidth, dnnl_format_tag_any)
            var biasMD = bias
            var desc = dnnl_convolution_desc_t()
            let status = withUnsafePointer(to: &biasMD) { b in
                ldm_dnnl_conv_forward(&desc, &anySrc, &anyWeights, hasBias ? b : nil, &anyDst, window, alg)
            }
            try OneDNN.check(status, "convolution forward descriptor for \(geo)")
            return try OneDNNPrimitive("convolution forward") { dnnl_primitive_desc_create(&$0, &desc, nil, OneDNN.engine, nil) }
        }
        self.forward = forward
        self.algorithm = algorithm
        forwardSrc = try OneDNNReorder(from: src, to: forward.layout(dnnl_query_src_md))
        forwardWeights = try OneDNNReorder(from: weights, to: forward.layout(dnnl_query_weights_md))
        forwardDst = try OneDNNReorder(from: forward.layout(dnnl_query_dst_md), to: dst)
    }

    var threads: Int { Parallel.threadCount }

    /// With `keepInput`, returns the input as reordered for the forward (nil when it needed no
    /// reorder), for the weight gradient to read instead of reordering it again.
    func runForward(input: UnsafePointer<Float>, weight: Tensor, bias b: UnsafePointer<Float>?,
                    output: UnsafeMutablePointer<Float>, keepInput: Bool, layouts: WeightLayoutCache?) -> OneDNNStagedInput? {
        let x = Staged(input, forwardSrc, threads: threads)
        let w = stagedWeight(weight, forwardWeights, layouts)
        let y = forwardDst.isIdentity ? nil : TensorStorage(count: OneDNN.floatCount(forwardDst.from), zeroed: false)
        var args: [(Int32, dnnl_memory_desc_t, UnsafeMutableRawPointer)] = [
            (ldm_dnnl_arg_src(), forwardSrc.to, x.raw), (ldm_dnnl_arg_weights(), forwardWeights.to, w.raw),
            (ldm_dnnl_arg_dst(), forwardDst.from, UnsafeMutableRawPointer(y?.pointer ?? output)),
        ]
        if hasBias, let b { args.append((ldm_dnnl_arg_bias(), bias, UnsafeMutableRawPointer(mutating: b))) }
        forward.run(args, threads: threads)
        if let y { forwardDst.run(from: y.pointer, to: output, threads: threads) }
        guard keepInput, let storage = x.storage else { return nil }
        return OneDNNStagedInput(layout: forwardSrc.to, storage: storage)
    }

    // Backward data: diff_src = conv_transpose(diff_dst, W).
    private struct BackwardData {
        let primitive: OneDNNPrimitive
        let diffDst: OneDNNReorder, weights: OneDNNReorder, diffSrc: OneDNNReorder
    }

    private lazy var backwardData: Result<BackwardData, Error> = Result {
        let p = try backwardPrimitive("convolution backward data") { desc, alg in
            var anyDiffSrc = OneDNN.plain(geo.batch, geo.inChannels, geo.height, geo.width, dnnl_format_tag_any)
            var anyWeights = OneDNN.plain(geo.outChannels, geo.inChannels, geo.kernelHeight, geo.kernelWidth, dnnl_format_tag_any)
            var anyDiffDst = OneDNN.plain(geo.batch, geo.outChannels, geo.outHeight, geo.outWidth, dnnl_format_tag_any)
            return ldm_dnnl_conv_backward_data(&desc, &anyDiffSrc, &anyWeights, &anyDiffDst, window, alg)
        }
        return BackwardData(primitive: p,
                            diffDst: try OneDNNReorder(from: dst, to: p.layout(dnnl_query_diff_dst_md)),
                            weights: try OneDNNReorder(from: weights, to: p.layout(dnnl_query_weights_md)),
                            diffSrc: try OneDNNReorder(from: p.layout(dnnl_query_diff_src_md), to: src))
    }

    /// A backward primitive on the forward's algorithm, else on the direct kernels (hinted by
    /// the forward only when the two match, as oneDNN requires).
    private func backwardPrimitive(_ what: String,
                                   _ describe: (inout dnnl_convolution_desc_t, dnnl_alg_kind_t) -> dnnl_status_t) throws -> OneDNNPrimitive {
        let algorithms = algorithm == dnnl_convolution_direct ? [algorithm] : [algorithm, dnnl_convolution_direct]
        return try Self.firstTaken(algorithms) { alg in
            var desc = dnnl_convolution_desc_t()
            try OneDNN.check(describe(&desc, alg), "\(what) descriptor for \(geo)")
            let hint = alg == algorithm ? forward.descriptor : nil
            return try OneDNNPrimitive(what) { dnnl_primitive_desc_create(&$0, &desc, nil, OneDNN.engine, hint) }
        }.0
    }

    /// The first of `algorithms` oneDNN makes a primitive for, and which it was; the last
    /// refusal when none.
    private static func firstTaken(_ algorithms: [dnnl_alg_kind_t],
                                   _ make: (dnnl_alg_kind_t) throws -> OneDNNPrimitive) throws -> (OneDNNPrimitive, dnnl_alg_kind_t) {
        var refusal: Error?
        for alg in algorithms {
            do { return (try make(alg), alg) } catch { refusal = error }
        }
        throw refusal!
    }

    // Backward weights: diff_W = Σ_n diff_dst ⋆ src, diff_b = Σ diff_dst.
    private struct BackwardWeights {
        let primitive: OneDNNPrimitive
        let src: OneDNNReorder, diffDst: OneDNNReorder, diffWeights: OneDNNReorder
    }

    private var backwardWeightsCache: [Bool: Result<BackwardWeights, Error>] = [:]

    private func backwardWeights(withBias: Bool) -> Result<BackwardWeights, Error> {
        if let cached = backwardWeightsCache[withBias] { return cached }
        let made = Result { () throws -> BackwardWeights in
            let p = try backwardPrimitive("convolution backward weights") { desc, alg in
                var anySrc = OneDNN.plain(geo.batch, geo.inChannels, geo.height, geo.width, dnnl_format_tag_any)
                var anyDiffWeights = OneDNN.plain(geo.outChannels, geo.inChannels, geo.kernelHeight, geo.kernelWidth,
                                                  dnnl_format_tag_any)
                var anyDiffDst = OneDNN.plain(geo.batch, geo.outChannels, geo.outHeight, geo.outWidth, dnnl_format_tag_any)
                var biasMD = bias
                return withUnsafePointer(to: &biasMD) { b in
                    ldm_dnnl_conv_backward_weights(&desc, &anySrc, &anyDiffWeights, withBias ? b : nil, &anyDiffDst, window, alg)
                }
            }
            return BackwardWeights(primitive: p,
                                   src: try OneDNNReorder(from: src, to: p.layout(dnnl_query_src_md)),
                                   diffDst: try OneDNNReorder(from: dst, to: p.layout(dnnl_query_diff_dst_md)),
                                   diffWeights: try OneDNNReorder(from: p.layout(dnnl_query_diff_weights_md), to: weights))
        }
        backwardWeightsCache[withBias] = made
        return made
    }

    /// Creates the backward primitives this call needs; false when oneDNN has none for them.
    func prepareBackward(needInput: Bool, needWeight: Bool, needBias: Bool) -> Bool {
        if needInput, case .failure = backwardData { return false }
        if needWeight || needBias, case .failure = backwardWeights(withBias: needBias) { return false }
        return true
    }

    func runBackward(input: Tensor, weight: Tensor, gradOutput: Tensor, savedInput: OneDNNStagedInput?,
                     needInput: Bool, needWeight: Bool, needBias: Bool, layouts: WeightLayoutCache?) -> Conv2dKernels.Gradients {
        var result = Conv2dKernels.Gradients()
        // diff_dst is staged once when both primitives want the same layout.
        var stagedGrad: (dnnl_memory_desc_t, Staged)?
        func gradOut(_ reorder: OneDNNReorder) -> UnsafeMutableRawPointer {
            if let (md, s) = stagedGrad, OneDNN.equal(md, reorder.to) { return s.raw }
            let s = Staged(gradOutput.pointer, reorder, threads: threads)
            stagedGrad = (reorder.to, s)
            return s.raw
        }
        if needInput, case .success(let bd) = backwardData {
            let gx = Tensor(uninitialized: input.shape)
            let w = stagedWeight(weight, bd.weights, layouts)
            let dy = gradOut(bd.diffDst)
            let dx = bd.diffSrc.isIdentity ? nil : TensorStorage(count: OneDNN.floatCount(bd.diffSrc.from), zeroed: false)
            bd.primitive.run([(ldm_dnnl_arg_diff_dst(), bd.diffDst.to, dy), (ldm_dnnl_arg_weights(), bd.weights.to, w.raw),
                              (ldm_dnnl_arg_diff_src(), bd.diffSrc.from, UnsafeMutableRawPointer(dx?.pointer ?? gx.pointer))],
                             threads: threads)
            if let dx { bd.diffSrc.run(from: dx.pointer, to: gx.pointer, threads: threads) }
            result.input = gx
        }
        if needWeight || needBias, case .success(let bw) = backwardWeights(withBias: needBias) {
            let x = savedInput.flatMap { Staged(saved: $0, for: bw.src) } ?? Staged(input.pointer, bw.src, threads: threads)
            let dy = gradOut(bw.diffDst)
            let gw = Tensor(uninitialized: weight.shape)
            let dw = bw.diffWeights.isIdentity ? nil : TensorStorage(count: OneDNN.floatCount(bw.diffWeights.from), zeroed: false)
            let gb = needBias ? Tensor(uninitialized: [geo.outChannels]) : nil
            var args: [(Int32, dnnl_memory_desc_t, UnsafeMutableRawPointer)] = [
                (ldm_dnnl_arg_src(), bw.src.to, x.raw), (ldm_dnnl_arg_diff_dst(), bw.diffDst.to, dy),
                (ldm_dnnl_arg_diff_weights(), bw.diffWeights.from, UnsafeMutableRawPointer(dw?.pointer ?? gw.pointer)),
            ]
            if let gb { args.append((ldm_dnnl_arg_diff_bias(), bias, UnsafeMutableRawPointer(gb.pointer))) }
            bw.primitive.run(args, threads: threads)
            if let dw { bw.diffWeights.run(from: dw.pointer, to: gw.pointer, threads: threads) }
            if needWeight { result.weight = gw }
            result.bias = gb
        }
        return result
    }

    /// The weight in the layout `reorder` leads to: through `layouts` when one is in effect, so
    /// a weight already reordered since it last changed is not reordered again.
    private func stagedWeight(_ weight: Tensor, _ reorder: OneDNNReorder, _ layouts: WeightLayoutCache?) -> Staged {
        guard let layouts, !reorder.isIdentity else { return Staged(weight.pointer, reorder, threads: threads) }
        let storage = layouts.staged(weight.storage, layout: reorder.to, shape: weight.shape) {
            reorder.run(from: weight.pointer, to: $0, threads: threads)
        }
        return Staged(storage)
    }
}

/// A convolution's input in the forward primitive's layout, kept from forward to backward.
final class OneDNNStagedInput {
    let layout: dnnl_memory_desc_t
    let storage: TensorStorage

    init(layout: dnnl_memory_desc_t, storage: TensorStorage) {
        self.layout = layout
        self.storage = storage
    }
}

/// A tensor in the layout a primitive wants: the caller's buffer when it already is, else a
/// pooled copy reordered into it (kept alive as long as this value).
private struct Staged {
    let storage: TensorStorage?
    let raw: UnsafeMutableRawPointer

    /// The forward's copy, when it is in the layout `reorder` leads to.
    init?(saved: OneDNNStagedInput, for reorder: OneDNNReorder) {
        guard !reorder.isIdentity, OneDNN.equal(saved.layout, reorder.to) else { return nil }
        storage = saved.storage
        raw = UnsafeMutableRawPointer(saved.storage.pointer)
    }

    init(_ storage: TensorStorage) {
        self.storage = storage
        raw = UnsafeMutableRawPointer(storage.pointer)
    }

    init(_ pointer: UnsafePointer<Float>, _ reorder: OneDNNReorder, threads: Int) {
        if reorder.isIdentity {
            storage = nil
            raw = UnsafeMutableRawPointer(mutating: pointer)
        } else {
            let s = TensorStorage(count: OneDNN.floatCount(reorder.to), zeroed: false)
            reorder.run(from: pointer, to: s.pointer, threads: threads)
            storage = s
            raw = UnsafeMutableRawPointer(s.pointer)
        }
    }
}
