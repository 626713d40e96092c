import Foundation
import XCTest
@testable import Tensor

/// conv2d, pooling and upsampling against values PyTorch computed
/// (Tests/Fixtures/generate_conv_fixtures.py, float64 there, so tolerances are Float32's).
final class TorchConvFixtureTests: XCTestCase {
    struct Fixture: Decodable {
        struct Conv: Decodable {
            let name: String, stride: Int, padding: [Int]
            let x_shape: [Int], x: [Float], w_shape: [Int], w: [Float], b: [Float]?
            let y_shape: [Int], y: [Float], gy: [Float], gx: [Float], gw: [Float], gb: [Float]?
        }
        struct Pool: Decodable {
            let x_shape: [Int], x: [Float], kernel: Int, stride: Int, padding: Int
            let out_shape: [Int], max: [Float], avg: [Float]
        }
        struct Upsample: Decodable { let x_shape: [Int], x: [Float], y: [Float] }
        let conv: [Conv], pool: [Pool], upsample: Upsample
    }

    static func load() throws -> Fixture {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/conv_pool.json")
        return try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
    }

    func testConv2dMatchesTorch() throws {
        for c in try Self.load().conv {
            let x = Tensor(shape: c.x_shape, scalars: c.x, requiresGrad: true)
            let w = Tensor(shape: c.w_shape, scalars: c.w, requiresGrad: true)
            let b = c.b.map { Tensor(shape: [c.w_shape[0]], scalars: $0, requiresGrad: true) }
            let p = Padding2D(top: c.padding[0], bottom: c.padding[1], left: c.padding[2], right: c.padding[3])
            let y = x.conv2d(weight: w, bias: b, stride: c.stride, padding: p)
            assertClose(y, Tensor(shape: c.y_shape, scalars: c.y), atol: 1e-4, rtol: 1e-4)
            let grads = gradients(of: y, wrt: [x, w] + (b.map { [$0] } ?? []), seed: Tensor(shape: c.y_shape, scalars: c.gy))
            assertClose(grads[0]!, Tensor(shape: c.x_shape, scalars: c.gx), atol: 1e-4, rtol: 1e-4)
            assertClose(grads[1]!, Tensor(shape: c.w_shape, scalars: c.gw), atol: 1e-4, rtol: 1e-4)
            if let gb = c.gb { assertClose(grads[2]!, Tensor(shape: [gb.count], scalars: gb), atol: 1e-4, rtol: 1e-4) }
        }
    }

    func testPoolingMatchesTorch() throws {
        for c in try Self.load().pool {
            let x = Tensor(shape: c.x_shape, scalars: c.x)
            assertClose(x.maxPool2d(kernel: c.kernel, stride: c.stride, padding: c.padding),
                        Tensor(shape: c.out_shape, scalars: c.max), atol: 1e-6)
            assertClose(x.avgPool2d(kernel: c.kernel, stride: c.stride, padding: c.padding),
                        Tensor(shape: c.out_shape, scalars: c.avg), atol: 1e-5)
        }
    }

    func testUpsampleMatchesTorch() throws {
        let u = try Self.load().upsample
        let x = Tensor(shape: u.x_shape, scalars: u.x)
        let s = u.x_shape
        assertClose(x.upsampledNearest(scale: 2), Tensor(shape: [s[0], s[1], 2 * s[2], 2 * s[3]], scalars: u.y), atol: 0)
    }
}
