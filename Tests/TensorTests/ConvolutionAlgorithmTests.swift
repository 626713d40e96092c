import CDNNL
import Foundation
import XCTest
@testable import Tensor
import TestSupport

/// Winograd on the oneDNN backend: where it runs, that its outputs and gradients match the
/// direct kernels and OpenBLAS to rounding, that it is deterministic, and that the
/// environment variable choosing it refuses a bad value.
final class ConvolutionAlgorithmTests: XCTestCase {
    override func setUpWithError() throws {
        XCTAssertTrue(ComputeBackends.oneDNNAvailable, "oneDNN must run here (Launch/setup.sh installs libdnnl-dev)")
    }

    typealias ConvCase = ComputeBackendTests.ConvCase

    /// Shapes Winograd takes: odd maps (partial 4×4 tiles), channel counts off the block of
    /// 16, batch 1, no padding, the models' own shapes, and the floor of 32 tiles of 4×4.
    static let winogradCases: [ConvCase] = [
        ConvCase(n: 3, cin: 32, h: 13, w: 11, cout: 24, k: (3, 3), stride: 1, padding: Padding2D(1)),
        ConvCase(n: 1, cin: 16, h: 17, w: 29, cout: 32, k: (3, 3), stride: 1, padding: Padding2D(1), bias: false),
        ConvCase(n: 8, cin: 20, h: 8, w: 8, cout: 29, k: (3, 3), stride: 1, padding: Padding2D(1)),
        ConvCase(n: 6, cin: 16, h: 11, w: 9, cout: 33, k: (3, 3), stride: 1, padding: Padding2D(0)),
        ConvCase(n: 2, cin: 64, h: 32, w: 32, cout: 64, k: (3, 3), stride: 1, padding: Padding2D(1)),
        ConvCase(n: 2, cin: 128, h: 16, w: 16, cout: 128, k: (3, 3), stride: 1, padding: Padding2D(1)),
        ConvCase(n: 32, cin: 128, h: 4, w: 4, cout: 128, k: (3, 3), stride: 1, padding: Padding2D(1)),
    ]

    func geometry(_ c: ConvCase) -> ConvGeometry {
        ConvGeometry(input: [c.n, c.cin, c.h, c.w], weight: [c.cout, c.cin, c.k.0, c.k.1], stride: c.stride, padding: c.padding)
    }

    /// True where this machine's oneDNN has Winograd kernels (AVX-512).
    var winogradAvailable: Bool {
        let geo = geometry(Self.winogradCases[0])
        return (try? OneDNNConvolution(geo, hasBias: false, preferring: .winograd))?.algorithm == dnnl_convolution_winograd
    }

    func testWinogradRunsOnlyWhereItPays() throws {
        let direct = try OneDNNConvolution(geometry(Self.winogradCases[0]), hasBias: true, preferring: .direct)
        XCTAssertEqual(direct.algorithm, dnnl_convolution_direct)
        if direct.forward.implementation.contains("avx512") {
            XCTAssertTrue(winogradAvailable, "oneDNN has Winograd kernels on AVX-512")
        }
        for c in Self.winogradCases where winogradAvailable {
            let conv = try OneDNNConvolution(geometry(c), hasBias: c.bias, preferring: .winograd)
            XCTAssertEqual(conv.algorithm, dnnl_convolution_winograd, "\(geometry(c))")
            XCTAssertTrue(conv.forward.implementation.contains("wino"), conv.forward.implementation)
        }
        // A 3-channel input, 16 → 16, a 2×2 map, a 4×4 map at batch 16, stride 2 and 1×1 run
        // the direct kernels; so does asymmetric padding, which oneDNN's Winograd does not take.
        let directCases = [ConvCase(n: 2, cin: 3, h: 16, w: 16, cout: 64, k: (3, 3), stride: 1, padding: Padding2D(1)),
                           ConvCase(n: 4, cin: 16, h: 16, w: 16, cout: 16, k: (3, 3), stride: 1, padding: Padding2D(1)),
                           ConvCase(n: 16, cin: 128, h: 4, w: 4, cout: 128, k: (3, 3), stride: 1, padding: Padding2D(1)),
                           ConvCase(n: 8, cin: 16, h: 7, w: 8, cout: 32, k: (3, 3), stride: 1,
                                    padding: Padding2D(top: 0, bottom: 2, left: 1, right: 0)),
                           ConvCase(n: 4, cin: 128, h: 2, w: 2, cout: 128, k: (3, 3), stride: 1, padding: Padding2D(1)),
                           ConvCase(n: 2, cin: 32, h: 8, w: 8, cout: 32, k: (3, 3), stride: 2, padding: Padding2D(1)),
                           ConvCase(n: 2, cin: 32, h: 8, w: 8, cout: 32, k: (1, 1), stride: 1, padding: Padding2D(0))]
        for c in directCases {
            let conv = try OneDNNConvolution(geometry(c), hasBias: c.bias, preferring: .winograd)
            XCTAssertEqual(conv.algorithm, dnnl_convolution_direct, "\(geometry(c))")
        }
        // The benchmarks' switch asks for it on those shapes too, and only inside its body.
        let fewTiles = geometry(directCases[2])
        let forced = try ConvolutionAlgorithm.withWinogradOnEveryShape {
            try OneDNNConvolution(fewTiles, hasBias: true, preferring: ConvolutionAlgorithm.current)
        }
        XCTAssertEqual(forced.algorithm, winogradAvailable ? dnnl_convolution_winograd : dnnl_convolution_direct)
        XCTAssertFalse(ConvolutionAlgorithm.onEveryShape)
        XCTAssertEqual(try OneDNNConvolution(fewTiles, hasBias: true, preferring: .winograd).algorithm, dnnl_convolution_direct)
    }

    /// max |a − b| over max |b|: Winograd's rounding is relative to the whole sum, not to each
    /// element, so small outputs carry the error of large ones. Fails on non-finite values.
    func scaledError(_ a: Tensor, _ b: Tensor) -> Float {
        XCTAssertEqual(a.shape, b.shape)
        var worst: Float = 0, scale: Float = 0
        for i in 0..<a.count {
            let x = a.pointer[i], y = b.pointer[i]
            guard x.isFinite && y.isFinite else { return .infinity }
            worst = max(worst, abs(x - y))
            scale = max(scale, abs(y))
        }
        return scale > 0 ? worst / scale : worst
    }

    func results(_ c: ConvCase, seed: UInt64, backend: String, algorithm: ConvolutionAlgorithm) -> [Tensor] {
        ConvolutionAlgorithm.with(algorithm) {
            ComputeBackendTests.convResults(c, seed: seed, backend: backend)
        }
    }

    func testWinogradAgreesWithDirectAndOpenBLAS() {
        let names = ["output", "grad input", "grad weight", "grad bias"]
        var worst: Float = 0
        defer { print("Winograd vs OpenBLAS and direct: worst scaled error \(worst)") }
        for (i, c) in Self.winogradCases.enumerated() {
            let seed = UInt64(100 + 10 * i)
            let reference = results(c, seed: seed, backend: "openblas", algorithm: .direct)
            let direct = results(c, seed: seed, backend: "onednn", algorithm: .direct)
            let winograd = results(c, seed: seed, backend: "onednn", algorithm: .winograd)
            XCTAssertEqual(winograd.count, reference.count)
            for j in reference.indices {
                let toReference = scaledError(winograd[j], reference[j]), toDirect = scaledError(winograd[j], direct[j])
                worst = max(worst, toReference, toDirect)
                XCTAssertLessThan(toReference, 2e-5, "case \(i) \(names[j]) against OpenBLAS")
                XCTAssertLessThan(toDirect, 2e-5, "case \(i) \(names[j]) against the direct kernels")
            }
        }
    }

    func testWinogradGradientsMatchFiniteDifferences() throws {
        for c in [Self.winogradCases[1], Self.winogradCases[3]] where winogradAvailable {
            XCTAssertEqual(try OneDNNConvolution(geometry(c), hasBias: c.bias, preferring: .winograd).algorithm,
                           dnnl_convolution_winograd, "the check must run Winograd")
        }
        ConvolutionAlgorithm.with(.winograd) {
            ComputeBackends.withBackend("onednn") {
                for (i, c) in [Self.winogradCases[1], Self.winogradCases[3]].enumerated() {
                    let x = randn([c.n, c.cin, c.h, c.w], seed: UInt64(60 + i))
                    let w = randn([c.cout, c.cin, c.k.0, c.k.1], seed: UInt64(70 + i), scale: 0.2)
                    let b = randn([c.cout], seed: UInt64(80 + i))
                    assertGradientsMatch([x, w, b], epsilon: 1e-2, atol: 2e-3, rtol: 1e-2) { t in
                        t[0].conv2d(weight: t[1], bias: t[2], stride: c.stride, padding: c.padding)
                    }
                }
            }
        }
    }

    /// Data parallelism sums per-rank weight gradients: Winograd's gradient of a whole batch is
    /// the sum of its halves' to rounding, as two ranks against one process need.
    func testWinogradWeightGradientOfABatchIsTheSumOfItsHalves() {
        let c = Self.winogradCases[4]
        ConvolutionAlgorithm.with(.winograd) {
            ComputeBackends.withBackend("onednn") {
                let x = randn([c.n, c.cin, c.h, c.w], seed: 31)
                let w = randn([c.cout, c.cin, c.k.0, c.k.1], seed: 32, scale: 0.5)
                let gy = randn([c.n, c.cout, c.h, c.w], seed: 33)
                func weightGradient(_ range: Range<Int>) -> Tensor {
                    let xs = x.slice(alongAxis: 0, range), w = w.detached()
                    w.requiresGrad = true
                    let y = xs.conv2d(weight: w, bias: nil, stride: 1, padding: c.padding)
                    return gradients(of: y, wrt: [w], seed: gy.slice(alongAxis: 0, range))[0]!
                }
                let whole = weightGradient(0..<c.n)
                let halves = weightGradient(0..<c.n / 2) + weightGradient(c.n / 2..<c.n)
                let error = scaledError(halves, whole)
                print("Winograd weight gradient, batch vs the sum of its halves: scaled error \(error)")
                XCTAssertLessThan(error, 2e-5)
            }
        }
    }

    /// Same inputs, same thread count: the same bits (resume relies on it).
    func testWinogradIsDeterministicAtAFixedThreadCount() {
        let c = Self.winogradCases[5]
        let first = results(c, seed: 9, backend: "onednn", algorithm: .winograd).map(\.scalars)
        for _ in 0..<2 { XCTAssertEqual(results(c, seed: 9, backend: "onednn", algorithm: .winograd).map(\.scalars), first) }
    }

    func testTheEnvironmentVariableIsCheckedAndNamed() {
        let name = ConvolutionAlgorithm.environmentVariable
        let saved = ProcessInfo.processInfo.environment[name]
        defer { if let saved { setenv(name, saved, 1) } else { unsetenv(name) } }
        setenv(name, "fft", 1)
        let error = ConvolutionAlgorithm.environmentError()
        XCTAssertEqual(error?.description, "LDM_CONV_ALGORITHM=fft: unknown convolution algorithm; use one of winograd, direct")
        XCTAssertThrowsError(try ComputeBackends.validateEnvironment())
        for good in ["winograd", "DIRECT", ""] {
            setenv(name, good, 1)
            XCTAssertNil(ConvolutionAlgorithm.environmentError(), good)
        }
        XCTAssertEqual(ConvolutionAlgorithm.current, saved.flatMap { ConvolutionAlgorithm(rawValue: $0.lowercased()) } ?? .winograd)
    }

    func testTheSummaryNamesWinogradWhereItRuns() {
        let summary = ComputeBackends.withBackend("onednn") {
            ConvolutionAlgorithm.with(.winograd) { ComputeBackends.currentSummary }
        }
        XCTAssertEqual(summary.contains("wino"), winogradAvailable, summary)
        let direct = ComputeBackends.withBackend("onednn") {
            ConvolutionAlgorithm.with(.direct) { ComputeBackends.currentSummary }
        }
        XCTAssertFalse(direct.contains("wino"), direct)
    }
}
