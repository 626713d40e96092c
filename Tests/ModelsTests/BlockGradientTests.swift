import XCTest
@testable import Models
import NN
import Tensor

/// Finite-difference checks of the first stage's building blocks, w.r.t. inputs and weights.
final class BlockGradientTests: XCTestCase {
    func testResnetBlockWithoutShortcut() {
        var g = RandomGenerator(seed: 10)
        let block = ResnetBlock(inChannels: 32, outChannels: 32, randomSource: RandomSource(seed: 1), generator: &g)
        XCTAssertNil(block.ninShortcut)
        let x = randn([1, 32, 3, 3], seed: 11)
        assertGradientsMatch([x, block.conv1.weight, block.norm2.weight!], atol: 2e-3) { xs in block(xs[0]) }
    }

    func testResnetBlockWithShortcut() {
        var g = RandomGenerator(seed: 12)
        let block = ResnetBlock(inChannels: 32, outChannels: 64, randomSource: RandomSource(seed: 1), generator: &g)
        let shortcut = try! XCTUnwrap(block.ninShortcut)
        XCTAssertEqual(shortcut.weight.shape, [64, 32, 1, 1])
        let x = randn([1, 32, 3, 3], seed: 13)
        assertGradientsMatch([x, shortcut.weight, shortcut.bias!, block.conv2.weight], atol: 2e-3) { xs in block(xs[0]) }
    }

    func testAttnBlock() {
        var g = RandomGenerator(seed: 14)
        let attn = AttnBlock(channels: 32, generator: &g)
        let x = randn([2, 32, 2, 3], seed: 15)
        assertGradientsMatch([x, attn.q.weight, attn.k.weight, attn.v.bias!, attn.projOut.weight], atol: 2e-3) { xs in attn(xs[0]) }
    }

    /// Odd and even sizes: the (0, 1, 0, 1) padding gives ⌊H/2⌋… as the reference.
    func testDownsampleAsymmetricPadding() {
        var g = RandomGenerator(seed: 16)
        let down = Downsample(channels: 32, generator: &g)
        XCTAssertEqual(withoutGrad { down(randn([1, 32, 8, 8])) }.shape, [1, 32, 4, 4])
        XCTAssertEqual(withoutGrad { down(randn([1, 32, 5, 5])) }.shape, [1, 32, 2, 2])
        // The pad sits at the bottom/right: output (0, 0) sees input rows/cols 0…2 only, and the
        // last output of a 4×4 input sees row/col 3 and the zero pad.
        let x = randn([1, 32, 4, 4], seed: 17)
        let manual = withoutGrad {
            x.padded(Padding2D(top: 0, bottom: 1, left: 0, right: 1)).conv2d(weight: down.conv.weight, bias: down.conv.bias, stride: 2)
        }
        let symmetric = withoutGrad { x.conv2d(weight: down.conv.weight, bias: down.conv.bias, stride: 2, padding: Padding2D(1)) }
        assertClose(withoutGrad { down(x) }, manual, atol: 1e-6)
        XCTAssertGreaterThan(abs(withoutGrad { down(x) }.pointer[0] - symmetric.pointer[0]), 1e-4,
                             "Downsample must not pad symmetrically")
        assertGradientsMatch([randn([1, 32, 5, 5], seed: 18), down.conv.weight], atol: 2e-3) { xs in down(xs[0]) }
    }

    func testUpsample() {
        var g = RandomGenerator(seed: 19)
        let up = Upsample(channels: 32, generator: &g)
        XCTAssertEqual(withoutGrad { up(randn([1, 32, 3, 2])) }.shape, [1, 32, 6, 4])
        assertGradientsMatch([randn([1, 32, 2, 2], seed: 20), up.conv.weight], atol: 2e-3) { xs in up(xs[0]) }
    }
}
