import XCTest
@testable import Tensor
import TestSupport

/// Every op the compute backend serves, oneDNN against OpenBLAS: GEMM (every transpose, odd
/// sizes, leading dimensions wider than the matrix, alpha/beta) and conv2d's output and its
/// three gradients on odd shapes, strides, asymmetric padding, 1×1, batch 1 and the models'
/// own shapes.
final class ComputeBackendTests: XCTestCase {
    override func setUpWithError() throws {
        XCTAssertTrue(ComputeBackends.oneDNNAvailable, "oneDNN must run here (Launch/setup.sh installs libdnnl-dev)")
    }

    struct ConvCase {
        var n: Int, cin: Int, h: Int, w: Int, cout: Int, k: (Int, Int), stride: Int, padding: Padding2D, bias = true
    }

    static let convCases: [ConvCase] = [
        ConvCase(n: 2, cin: 3, h: 7, w: 5, cout: 4, k: (3, 3), stride: 1, padding: Padding2D(1)),
        ConvCase(n: 1, cin: 5, h: 9, w: 11, cout: 7, k: (3, 3), stride: 2, padding: Padding2D(1)),
        // The first stage's Downsample: pad (0, 1, 0, 1), stride 2.
        ConvCase(n: 3, cin: 16, h: 8, w: 8, cout: 16, k: (3, 3), stride: 2, padding: Padding2D(top: 0, bottom: 1, left: 0, right: 1)),
        ConvCase(n: 1, cin: 2, h: 6, w: 9, cout: 3, k: (3, 3), stride: 2, padding: Padding2D(top: 2, bottom: 0, left: 1, right: 3)),
        ConvCase(n: 3, cin: 4, h: 5, w: 6, cout: 2, k: (1, 1), stride: 1, padding: Padding2D(0)),
        ConvCase(n: 1, cin: 5, h: 4, w: 3, cout: 6, k: (1, 1), stride: 1, padding: Padding2D(0), bias: false),
        ConvCase(n: 2, cin: 3, h: 7, w: 7, cout: 2, k: (1, 1), stride: 2, padding: Padding2D(1)),
        ConvCase(n: 2, cin: 2, h: 6, w: 7, cout: 3, k: (2, 3), stride: 3, padding: Padding2D(top: 1, bottom: 2, left: 0, right: 2)),
        ConvCase(n: 1, cin: 2, h: 4, w: 4, cout: 3, k: (5, 5), stride: 1, padding: Padding2D(2), bias: false),
        ConvCase(n: 2, cin: 1, h: 2, w: 2, cout: 2, k: (3, 3), stride: 1, padding: Padding2D(1)),
        // PatchGAN's 4×4 convs, the models' 3 → 64 input conv and a deep 2×2 map.
        ConvCase(n: 2, cin: 8, h: 9, w: 9, cout: 16, k: (4, 4), stride: 2, padding: Padding2D(1)),
        ConvCase(n: 2, cin: 3, h: 16, w: 16, cout: 64, k: (3, 3), stride: 1, padding: Padding2D(1)),
        ConvCase(n: 4, cin: 128, h: 2, w: 2, cout: 128, k: (3, 3), stride: 1, padding: Padding2D(1)),
        ConvCase(n: 2, cin: 64, h: 8, w: 8, cout: 128, k: (1, 1), stride: 1, padding: Padding2D(0)),
    ]

    /// Output and (input, weight, bias) gradients of one case on one backend.
    static func convResults(_ c: ConvCase, seed: UInt64, backend: String) -> [Tensor] {
        ComputeBackends.withBackend(backend) {
            let x = randn([c.n, c.cin, c.h, c.w], seed: seed)
            let w = randn([c.cout, c.cin, c.k.0, c.k.1], seed: seed + 1, scale: 0.5)
            let b = c.bias ? randn([c.cout], seed: seed + 2) : nil
            let inputs = [x, w] + (b.map { [$0] } ?? [])
            for t in inputs { t.requiresGrad = true }
            let y = x.conv2d(weight: w, bias: b, stride: c.stride, padding: c.padding)
            let gy = randn(y.shape, seed: seed + 3)
            return [y] + gradients(of: y, wrt: inputs, seed: gy).map { $0! }
        }
    }

    func testConvolutionAgreesBetweenBackends() {
        for (i, c) in Self.convCases.enumerated() {
            let reference = Self.convResults(c, seed: UInt64(10 * i), backend: "openblas")
            let dnnl = Self.convResults(c, seed: UInt64(10 * i), backend: "onednn")
            XCTAssertEqual(reference.count, dnnl.count)
            for (j, (a, b)) in zip(dnnl, reference).enumerated() {
                if let failure = closenessFailure(a, b, atol: 2e-4, rtol: 2e-4) {
                    XCTFail("case \(i) \(["output", "grad input", "grad weight", "grad bias"][j]): \(failure)")
                }
            }
        }
    }

    /// Requesting only some gradients gives the same values as requesting all of them.
    func testPartialGradientsOnOneDNN() {
        let c = Self.convCases[2]
        let all = Self.convResults(c, seed: 5, backend: "onednn")
        ComputeBackends.withBackend("onednn") {
            let x = randn([c.n, c.cin, c.h, c.w], seed: 5)
            let w = randn([c.cout, c.cin, c.k.0, c.k.1], seed: 6, scale: 0.5)
            let b = randn([c.cout], seed: 7)
            w.requiresGrad = true
            let y = x.conv2d(weight: w, bias: b, stride: c.stride, padding: c.padding)
            let grads = gradients(of: y, wrt: [x, w, b], seed: randn(y.shape, seed: 8))
            XCTAssertNil(grads[0])
            XCTAssertNil(grads[2])
            XCTAssertEqual(grads[1]!.scalars, all[2].scalars)
        }
    }

    func testConvolutionGradientsMatchFiniteDifferencesOnOneDNN() {
        ComputeBackends.withBackend("onednn") {
            for (i, c) in [Self.convCases[0], Self.convCases[3], Self.convCases[4], Self.convCases[7]].enumerated() {
                let x = randn([c.n, c.cin, c.h, c.w], seed: UInt64(i))
                let w = randn([c.cout, c.cin, c.k.0, c.k.1], seed: UInt64(20 + i), scale: 0.5)
                let b = randn([c.cout], seed: UInt64(40 + i))
                assertGradientsMatch([x, w, b], epsilon: 1e-2, atol: 2e-3, rtol: 1e-2) { t in
                    t[0].conv2d(weight: t[1], bias: t[2], stride: c.stride, padding: c.padding)
                }
            }
        }
    }

    /// The forward keeps its reordered copy of the input for the weight gradient, which then
    /// has the same bits as when backward reorders the input again.
    func testKeptInputGivesTheSameWeightGradient() {
        ComputeBackends.withBackend("onednn") {
            let geo = ConvGeometry(input: [2, 32, 6, 5], weight: [16, 32, 3, 3], stride: 1, padding: Padding2D(1))
            let x = randn([2, 32, 6, 5], seed: 31), w = randn([16, 32, 3, 3], seed: 32, scale: 0.5), b = randn([16], seed: 33)
            let backend = ComputeBackends.current
            let y = Tensor(uninitialized: [2, 16, 6, 5])
            let saved = backend.conv2dForward(geo, input: x.pointer, weight: w, bias: b.pointer, output: y.pointer,
                                              keepForBackward: true, layouts: nil)
            #if arch(x86_64)
            XCTAssertNotNil(saved, "32 channels are blocked on every x86 ISA oneDNN has")
            #endif
            XCTAssertNil(backend.conv2dForward(geo, input: x.pointer, weight: w, bias: b.pointer, output: y.pointer,
                                               keepForBackward: false, layouts: nil))
            let g = randn(y.shape, seed: 34)
            let kept = backend.conv2dBackward(geo, input: x, weight: w, gradOutput: g, saved: saved,
                                              needInput: true, needWeight: true, needBias: true, layouts: nil)
            let again = backend.conv2dBackward(geo, input: x, weight: w, gradOutput: g, saved: nil,
                                               needInput: true, needWeight: true, needBias: true, layouts: nil)
            for (a, b) in [(kept.weight, again.weight), (kept.bias, again.bias), (kept.input, again.input)] {
                XCTAssertTrue(a!.scalars.allSatisfy(\.isFinite))
                XCTAssertEqual(a!.scalars.map(\.bitPattern), b!.scalars.map(\.bitPattern))
            }
        }
    }

    /// Same inputs, same thread count: the same bits, call after call (resume relies on it).
    func testOneDNNIsDeterministicAtAFixedThreadCount() {
        let c = ConvCase(n: 8, cin: 32, h: 8, w: 8, cout: 32, k: (3, 3), stride: 1, padding: Padding2D(1))
        let first = Self.convResults(c, seed: 3, backend: "onednn").map(\.scalars)
        for _ in 0..<3 { XCTAssertEqual(Self.convResults(c, seed: 3, backend: "onednn").map(\.scalars), first) }
    }

    func testEmptyBatchFallsBackAndStaysEmpty() {
        ComputeBackends.withBackend("onednn") {
            let x = Tensor(zeros: [0, 3, 4, 4]), w = randn([2, 3, 3, 3], seed: 1)
            XCTAssertEqual(x.conv2d(weight: w, padding: Padding2D(1)).shape, [0, 2, 4, 4])
        }
    }

    func testGEMMAgreesBetweenBackends() {
        for (i, (m, n, k)) in [(1, 1, 1), (7, 5, 3), (33, 17, 65), (128, 64, 1152), (3, 200, 9)].enumerated() {
            for ta in [false, true] {
                for tb in [false, true] {
                    let a = randn(ta ? [k, m + 2] : [m, k + 2], seed: UInt64(i))
                    let b = randn(tb ? [n, k + 1] : [k, n + 1], seed: UInt64(i + 50))
                    let c0 = randn([m, n + 3], seed: UInt64(i + 99))
                    func run(_ backend: String) -> Tensor {
                        let c = Tensor(shape: c0.shape, scalars: c0.scalars)
                        ComputeBackends.withBackend(backend) {
                            BLAS.sgemm(transposeA: ta, transposeB: tb, m: m, n: n, k: k, alpha: 0.7,
                                       a: a.pointer, lda: a.shape[1], b: b.pointer, ldb: b.shape[1],
                                       beta: 0.3, c: c.pointer, ldc: n + 3)
                        }
                        return c
                    }
                    assertClose(run("onednn"), run("openblas"), atol: 1e-4, rtol: 1e-4)
                    // The oneDNN backend's dnnl_sgemm called directly, not through the BLAS seam.
                    let c = Tensor(shape: c0.shape, scalars: c0.scalars)
                    OneDNNBackend.shared!.sgemm(transposeA: ta, transposeB: tb, m: m, n: n, k: k, alpha: 0.7,
                                                a: a.pointer, lda: a.shape[1], b: b.pointer, ldb: b.shape[1],
                                                beta: 0.3, c: c.pointer, ldc: n + 3)
                    assertClose(c, run("openblas"), atol: 1e-4, rtol: 1e-4)
                }
            }
        }
    }

    func testTheProcessBackendIsNamed() {
        XCTAssertTrue(ComputeBackends.names.contains(ComputeBackends.currentName))
        XCTAssertTrue(ComputeBackends.currentSummary.hasPrefix(ComputeBackends.currentName))
        let requested = ProcessInfo.processInfo.environment[ComputeBackends.environmentVariable]
        XCTAssertEqual(ComputeBackends.currentName, requested ?? "onednn")
    }
}
