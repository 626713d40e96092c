import XCTest
@testable import Tensor

/// Direct-loop pooling over a zero- or −∞-padded image.
private func naivePool(_ x: Tensor, kernel k: Int, stride s: Int, padding p: Int, max isMax: Bool) -> Tensor {
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let oh = (h + 2 * p - k) / s + 1, ow = (w + 2 * p - k) / s + 1
    let y = Tensor(zeros: [n, c, oh, ow])
    for plane in 0..<(n * c) {
        for oy in 0..<oh {
            for ox in 0..<ow {
                var best = -Float.infinity, sum: Float = 0
                for ky in 0..<k {
                    for kx in 0..<k {
                        let iy = oy * s - p + ky, ix = ox * s - p + kx
                        guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }  // padding: −∞ or 0
                        let v = x.pointer[(plane * h + iy) * w + ix]
                        best = max(best, v)
                        sum += v
                    }
                }
                y.pointer[(plane * oh + oy) * ow + ox] = isMax ? best : sum / Float(k * k)
            }
        }
    }
    return y
}

/// Distinct values at least 0.1 apart, so finite differences never flip a max.
private func distinct(_ shape: [Int], seed: UInt64) -> Tensor {
    var g = RandomGenerator(seed: seed)
    let n = Tensor.elementCount(shape)
    return Tensor(shape: shape, scalars: g.permutation(n).map { Float($0) * 0.1 - Float(n) * 0.05 })
}

final class PoolingTests: XCTestCase {
    static let configs: [(shape: [Int], kernel: Int, stride: Int, padding: Int)] = [
        ([2, 3, 8, 8], 2, 2, 0),
        ([1, 2, 7, 5], 3, 2, 1),
        ([2, 2, 6, 9], 3, 1, 1),
        ([1, 3, 5, 5], 2, 1, 0),
        ([2, 1, 9, 7], 4, 3, 2),
        ([1, 2, 4, 6], 1, 2, 0),
    ]

    func testMaxPoolMatchesDirectLoops() {
        for (i, c) in Self.configs.enumerated() {
            let x = randn(c.shape, seed: UInt64(i))
            assertClose(x.maxPool2d(kernel: c.kernel, stride: c.stride, padding: c.padding),
                        naivePool(x, kernel: c.kernel, stride: c.stride, padding: c.padding, max: true), atol: 0)
        }
    }

    func testAvgPoolMatchesDirectLoopsCountingPadding() {
        for (i, c) in Self.configs.enumerated() {
            let x = randn(c.shape, seed: UInt64(i))
            assertClose(x.avgPool2d(kernel: c.kernel, stride: c.stride, padding: c.padding),
                        naivePool(x, kernel: c.kernel, stride: c.stride, padding: c.padding, max: false), atol: 1e-6)
        }
        // A corner window with padding 1 sees one real pixel out of four.
        let ones = Tensor(repeating: 1, shape: [1, 1, 2, 2])
        XCTAssertEqual(ones.avgPool2d(kernel: 2, stride: 2, padding: 1).scalars, [0.25, 0.25, 0.25, 0.25])
    }

    func testMaxPoolGradientGoesToFirstMaximum() {
        let x = Tensor(shape: [1, 1, 2, 2], scalars: [3, 3, 1, 3], requiresGrad: true)
        x.maxPool2d(kernel: 2, stride: 2).sum().backward()
        XCTAssertEqual(x.grad!.scalars, [1, 0, 0, 0])
    }

    func testMaxPoolPropagatesNaN() {
        let x = Tensor(shape: [1, 1, 2, 2], scalars: [1, .nan, 5, 2])
        XCTAssertTrue(x.maxPool2d(kernel: 2, stride: 2).item.isNaN)
    }

    func testPoolGradientsMatchFiniteDifferences() {
        for (i, c) in Self.configs.enumerated() {
            assertGradientsMatch([distinct(c.shape, seed: UInt64(i))]) { t in
                t[0].maxPool2d(kernel: c.kernel, stride: c.stride, padding: c.padding)
            }
            assertGradientsMatch([randn(c.shape, seed: UInt64(i))]) { t in
                t[0].avgPool2d(kernel: c.kernel, stride: c.stride, padding: c.padding)
            }
        }
    }

    func testUpsampleNearestRepeatsPixels() {
        let x = Tensor(shape: [1, 1, 2, 3], scalars: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(x.upsampledNearest().scalars, [1, 1, 2, 2, 3, 3,
                                                      1, 1, 2, 2, 3, 3,
                                                      4, 4, 5, 5, 6, 6,
                                                      4, 4, 5, 5, 6, 6])
        let y = randn([2, 3, 4, 5], seed: 3)
        let up = y.upsampledNearest(scale: 3)
        XCTAssertEqual(up.shape, [2, 3, 12, 15])
        for plane in 0..<6 {
            for oy in 0..<12 {
                for ox in 0..<15 {
                    XCTAssertEqual(up.pointer[(plane * 12 + oy) * 15 + ox], y.pointer[(plane * 4 + oy / 3) * 5 + ox / 3])
                }
            }
        }
    }

    func testUpsampleGradientMatchesFiniteDifferences() {
        for scale in [2, 3] {
            assertGradientsMatch([randn([2, 2, 3, 4], seed: UInt64(scale))]) { t in
                t[0].upsampledNearest(scale: scale)
            }
        }
    }
}
