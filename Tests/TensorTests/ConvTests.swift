import XCTest
@testable import Tensor

/// Direct-loop convolution with its three gradients, the reference the GEMM path must match.
private struct NaiveConv {
    let output: Tensor, gradInput: Tensor, gradWeight: Tensor, gradBias: Tensor

    init(x: Tensor, w: Tensor, b: Tensor?, stride s: Int, padding p: Padding2D, gradOutput gy: Tensor) {
        let (n, cin, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (cout, kh, kw) = (w.shape[0], w.shape[2], w.shape[3])
        let oh = (h + p.top + p.bottom - kh) / s + 1, ow = (wd + p.left + p.right - kw) / s + 1
        let y = Tensor(zeros: [n, cout, oh, ow])
        let gx = Tensor(zeros: x.shape), gw = Tensor(zeros: w.shape), gb = Tensor(zeros: [cout])
        XCTAssertEqual(gy.shape, y.shape)
        for i in 0..<n {
            for o in 0..<cout {
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        let yi = ((i * cout + o) * oh + oy) * ow + ox
                        var acc = Double(b?.pointer[o] ?? 0)
                        let g = gy.pointer[yi]
                        gb.pointer[o] += g
                        for c in 0..<cin {
                            for ky in 0..<kh {
                                for kx in 0..<kw {
                                    let iy = oy * s - p.top + ky, ix = ox * s - p.left + kx
                                    guard iy >= 0, iy < h, ix >= 0, ix < wd else { continue }
                                    let xi = ((i * cin + c) * h + iy) * wd + ix
                                    let wi = ((o * cin + c) * kh + ky) * kw + kx
                                    acc += Double(x.pointer[xi]) * Double(w.pointer[wi])
                                    gx.pointer[xi] += g * w.pointer[wi]
                                    gw.pointer[wi] += g * x.pointer[xi]
                                }
                            }
                        }
                        y.pointer[yi] = Float(acc)
                    }
                }
            }
        }
        output = y; gradInput = gx; gradWeight = gw; gradBias = gb
    }
}

final class ConvTests: XCTestCase {
    struct Case {
        var n: Int, cin: Int, h: Int, w: Int, cout: Int, kh: Int, kw: Int, stride: Int, padding: Padding2D
        var bias = true
    }

    static let cases: [Case] = [
        Case(n: 2, cin: 3, h: 7, w: 5, cout: 4, kh: 3, kw: 3, stride: 1, padding: Padding2D(1)),
        Case(n: 3, cin: 4, h: 8, w: 6, cout: 5, kh: 3, kw: 3, stride: 2, padding: Padding2D(1)),
        // The autoencoder's Downsample: pad right/bottom by one, stride 2.
        Case(n: 2, cin: 3, h: 8, w: 8, cout: 3, kh: 3, kw: 3, stride: 2, padding: Padding2D(top: 0, bottom: 1, left: 0, right: 1)),
        Case(n: 1, cin: 2, h: 6, w: 9, cout: 3, kh: 3, kw: 3, stride: 2, padding: Padding2D(top: 2, bottom: 0, left: 1, right: 3)),
        Case(n: 3, cin: 4, h: 5, w: 6, cout: 2, kh: 1, kw: 1, stride: 1, padding: Padding2D(0)),  // pointwise fast path
        Case(n: 1, cin: 5, h: 4, w: 3, cout: 6, kh: 1, kw: 1, stride: 1, padding: Padding2D(0), bias: false),
        Case(n: 2, cin: 3, h: 7, w: 7, cout: 2, kh: 1, kw: 1, stride: 2, padding: Padding2D(1)),
        Case(n: 2, cin: 2, h: 6, w: 7, cout: 3, kh: 2, kw: 3, stride: 3, padding: Padding2D(top: 1, bottom: 2, left: 0, right: 2)),
        Case(n: 1, cin: 2, h: 4, w: 4, cout: 3, kh: 5, kw: 5, stride: 1, padding: Padding2D(2), bias: false),
        Case(n: 5, cin: 3, h: 3, w: 10, cout: 4, kh: 3, kw: 1, stride: 1, padding: Padding2D(top: 1, bottom: 1, left: 0, right: 0)),
        // Nine images split unevenly across cores (4 + 5), each core accumulating its own dW.
        Case(n: 9, cin: 2, h: 5, w: 4, cout: 3, kh: 3, kw: 3, stride: 1, padding: Padding2D(1)),
        // Kernel wider than the unpadded image: some taps never land inside.
        Case(n: 2, cin: 1, h: 2, w: 2, cout: 2, kh: 3, kw: 3, stride: 1, padding: Padding2D(1)),
    ]

    /// Both backends against the direct loops.
    func testForwardAndBackwardMatchDirectLoops() {
        for backend in ComputeBackends.names where backend == "openblas" || ComputeBackends.oneDNNAvailable {
            ComputeBackends.withBackend(backend) { matchDirectLoops() }
        }
    }

    func matchDirectLoops() {
        for (i, c) in Self.cases.enumerated() {
            let x = randn([c.n, c.cin, c.h, c.w], seed: UInt64(10 + i))
            let w = randn([c.cout, c.cin, c.kh, c.kw], seed: UInt64(100 + i), scale: 0.5)
            let b = c.bias ? randn([c.cout], seed: UInt64(200 + i)) : nil
            x.requiresGrad = true; w.requiresGrad = true; b?.requiresGrad = true
            let y = x.conv2d(weight: w, bias: b, stride: c.stride, padding: c.padding)
            let gy = randn(y.shape, seed: UInt64(300 + i))
            let ref = NaiveConv(x: x, w: w, b: b, stride: c.stride, padding: c.padding, gradOutput: gy)
            assertClose(y, ref.output, atol: 1e-4, rtol: 1e-4)
            let grads = gradients(of: y, wrt: [x, w] + (b.map { [$0] } ?? []), seed: gy)
            assertClose(grads[0]!, ref.gradInput, atol: 1e-4, rtol: 1e-4)
            assertClose(grads[1]!, ref.gradWeight, atol: 1e-4, rtol: 1e-4)
            if c.bias { assertClose(grads[2]!, ref.gradBias, atol: 1e-4, rtol: 1e-4) }
        }
    }

    /// Large images are processed in bands of output rows (OpenBLAS kernels); force tiny
    /// bands (including a ragged last one) and check every case still matches.
    func testRowBandsMatchWholeImages() {
        ComputeBackends.withBackend("openblas") { rowBandsMatchWholeImages() }
    }

    func rowBandsMatchWholeImages() {
        let saved = ConvGeometry.maxColumnFloats
        defer { ConvGeometry.maxColumnFloats = saved }
        ConvGeometry.maxColumnFloats = 1
        XCTAssertEqual(ConvGeometry(input: [1, 2, 7, 5], weight: [3, 2, 3, 3], stride: 1, padding: Padding2D(1)).rowBlocks.count, 7)
        ConvGeometry.maxColumnFloats = 2 * 18 * 5  // two rows of 2·3·3 taps × 5 columns: bands 2, 2, 2, 1
        XCTAssertEqual(ConvGeometry(input: [1, 2, 7, 5], weight: [3, 2, 3, 3], stride: 1, padding: Padding2D(1)).rowBlocks,
                       [0..<2, 2..<4, 4..<6, 6..<7])
        matchDirectLoops()
    }

    /// Small maps stack several images into one GEMM (OpenBLAS kernels); force one image per
    /// GEMM, and stacks of uneven sizes, and check every case against the direct loops.
    func testStackedImagesMatchDirectLoops() {
        ComputeBackends.withBackend("openblas") { stackedImagesMatchDirectLoops() }
    }

    func stackedImagesMatchDirectLoops() {
        let saved = ConvGeometry.targetGemmColumns
        defer { ConvGeometry.targetGemmColumns = saved }
        XCTAssertEqual(ConvGeometry(input: [16, 512, 2, 2], weight: [512, 512, 3, 3], stride: 1, padding: Padding2D(1))
            .imagesPerGemm, 16)
        XCTAssertEqual(ConvGeometry(input: [16, 32, 32, 32], weight: [32, 32, 3, 3], stride: 1, padding: Padding2D(1))
            .imagesPerGemm, 1)
        for target in [1, 40, 100] {
            ConvGeometry.targetGemmColumns = target
            matchDirectLoops()
        }
    }

    /// More images than cores and a single image take different threading paths; both must
    /// give the same numbers.
    func testSingleImageAndBatchedPathsAgree() {
        let x = randn([9, 3, 6, 6], seed: 1), w = randn([4, 3, 3, 3], seed: 2), b = randn([4], seed: 3)
        let batched = x.conv2d(weight: w, bias: b, padding: Padding2D(1))
        for i in 0..<9 {
            let single = x.slice(alongAxis: 0, i..<(i + 1)).conv2d(weight: w, bias: b, padding: Padding2D(1))
            assertClose(single, batched.slice(alongAxis: 0, i..<(i + 1)), atol: 1e-5)
        }
    }

    /// Weight and bias gradients sum over images; the grouping is fixed by the shapes, so
    /// one core and two cores must give bit-identical results on the OpenBLAS kernels
    /// (oneDNN promises the same bits only at a fixed thread count: ComputeBackendTests).
    func testResultsDoNotDependOnThreadCount() {
        ComputeBackends.withBackend("openblas") { resultsDoNotDependOnThreadCount() }
    }

    func resultsDoNotDependOnThreadCount() {
        let saved = Parallel.threadCount
        defer { Parallel.threadCount = saved }
        for n in [1, 3, 8, 9] {
            func run(threads: Int) -> [[Float]] {
                Parallel.threadCount = threads
                let x = randn([n, 3, 6, 5], seed: 1), w = randn([4, 3, 3, 3], seed: 2), b = randn([4], seed: 3)
                for t in [x, w, b] { t.requiresGrad = true }
                let y = x.conv2d(weight: w, bias: b, stride: 1, padding: Padding2D(1))
                return [y.scalars] + gradients(of: y, wrt: [x, w, b], seed: randn(y.shape, seed: 4)).map { $0!.scalars }
            }
            XCTAssertEqual(run(threads: 1), run(threads: 2), "batch \(n)")
        }
    }

    func testGradientsMatchFiniteDifferences() {
        let configs: [(Int, Int, Padding2D, Bool)] = [  // kernel, stride, padding, bias
            (3, 1, Padding2D(1), true),
            (3, 2, Padding2D(top: 0, bottom: 1, left: 0, right: 1), true),
            (1, 1, Padding2D(0), true),
            (2, 2, Padding2D(top: 1, bottom: 0, left: 2, right: 1), false),
        ]
        for (i, (k, s, p, hasBias)) in configs.enumerated() {
            let x = randn([2, 3, 5, 6], seed: UInt64(i))
            let w = randn([4, 3, k, k], seed: UInt64(20 + i), scale: 0.5)
            let b = randn([4], seed: UInt64(40 + i))
            let inputs = hasBias ? [x, w, b] : [x, w]
            assertGradientsMatch(inputs, epsilon: 1e-2, atol: 2e-3, rtol: 1e-2) { t in
                t[0].conv2d(weight: t[1], bias: hasBias ? t[2] : nil, stride: s, padding: p)
            }
        }
    }

    func testOnlyRequestedGradientsAreComputed() {
        let x = randn([2, 3, 5, 5], seed: 1), w = randn([4, 3, 3, 3], seed: 2), b = randn([4], seed: 3)
        w.requiresGrad = true
        let y = x.conv2d(weight: w, bias: b, padding: Padding2D(1))
        let gy = randn(y.shape, seed: 4)
        let grads = gradients(of: y, wrt: [x, w, b], seed: gy)
        XCTAssertNil(grads[0])
        XCTAssertNil(grads[2])
        let ref = NaiveConv(x: x, w: w, b: b, stride: 1, padding: Padding2D(1), gradOutput: gy)
        assertClose(grads[1]!, ref.gradWeight, atol: 1e-4, rtol: 1e-4)

        let x2 = randn([2, 3, 5, 5], seed: 5)
        x2.requiresGrad = true
        let y2 = x2.conv2d(weight: w.detached(), bias: nil, stride: 2, padding: Padding2D(1))
        let gy2 = randn(y2.shape, seed: 6)
        let g2 = gradients(of: y2, wrt: [x2], seed: gy2)
        let ref2 = NaiveConv(x: x2, w: w, b: nil, stride: 2, padding: Padding2D(1), gradOutput: gy2)
        assertClose(g2[0]!, ref2.gradInput, atol: 1e-4, rtol: 1e-4)
    }

    /// Folding the padding into im2col must equal padding explicitly first.
    func testAsymmetricPaddingEqualsExplicitPadThenConv() {
        let x = randn([2, 3, 9, 8], seed: 7), w = randn([5, 3, 3, 3], seed: 8), b = randn([5], seed: 9)
        let p = Padding2D(top: 0, bottom: 1, left: 0, right: 1)
        let folded = x.conv2d(weight: w, bias: b, stride: 2, padding: p)
        let explicit = x.padded(p).conv2d(weight: w, bias: b, stride: 2)
        XCTAssertEqual(folded.shape, [2, 5, 4, 4])
        assertClose(folded, explicit, atol: 1e-5)
    }

    func testPaddedValuesAndGradient() {
        let x = Tensor(shape: [1, 1, 2, 3], scalars: [1, 2, 3, 4, 5, 6])
        let y = x.padded(Padding2D(top: 1, bottom: 0, left: 2, right: 1), value: -1)
        XCTAssertEqual(y.shape, [1, 1, 3, 6])
        XCTAssertEqual(y.scalars, [-1, -1, -1, -1, -1, -1,
                                   -1, -1, 1, 2, 3, -1,
                                   -1, -1, 4, 5, 6, -1])
        assertGradientsMatch([randn([2, 3, 4, 5], seed: 1)]) { t in
            t[0].padded(Padding2D(top: 0, bottom: 1, left: 0, right: 1)) * t[0].padded(Padding2D(top: 1, bottom: 0, left: 1, right: 0))
        }
    }

    func testDownsampleGeometry() {
        let g = ConvGeometry(input: [2, 3, 8, 8], weight: [4, 3, 3, 3], stride: 2,
                             padding: Padding2D(top: 0, bottom: 1, left: 0, right: 1))
        XCTAssertEqual([g.outHeight, g.outWidth], [4, 4])
        XCTAssertEqual(g.columnRows, 27)
        XCTAssertFalse(g.isPointwise)
    }
}
