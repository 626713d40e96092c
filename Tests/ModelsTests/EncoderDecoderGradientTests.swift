import XCTest
@testable import Models
import NN
import Tensor

/// Finite-difference checks through the whole tiny encoder and decoder (attention at a level
/// and in the mid block, Downsample, Upsample).
final class EncoderDecoderGradientTests: XCTestCase {
    func testEncoderGradient() {
        var g = RandomGenerator(seed: 30)
        let config = tinyAutoencoderConfig()
        let encoder = FirstStageEncoder(config, doubleZ: true, randomSource: RandomSource(seed: 1), generator: &g)
        XCTAssertEqual(encoder.down[1].attn.count, 1, "the tiny config puts attention at the 4×4 level")
        let x = randn([1, 1, 8, 8], seed: 31)
        assertGradientsMatch([x, encoder.convIn.weight, encoder.down[1].attn[0].k.weight], atol: 3e-3, maxElements: 24) { xs in
            encoder(xs[0])
        }
    }

    func testDecoderGradient() {
        var g = RandomGenerator(seed: 32)
        let decoder = FirstStageDecoder(tinyAutoencoderConfig(), randomSource: RandomSource(seed: 1), generator: &g)
        XCTAssertEqual(decoder.up[1].attn.count, 2)
        let z = randn([1, 2, 4, 4], seed: 33)
        assertGradientsMatch([z, decoder.mid.attn1.q.weight, decoder.convOut.weight], atol: 3e-3, maxElements: 24) { xs in
            decoder(xs[0])
        }
    }
}
