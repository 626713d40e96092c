import XCTest
@testable import Models
import NN
import Tensor

final class AutoencoderShapeTests: XCTestCase {
    func smallConfig(_ regularizer: AutoencoderConfig.Regularizer = .kl, chMult: [Int] = [1, 2, 4]) -> AutoencoderConfig {
        var c = AutoencoderConfig()
        c.regularizer = regularizer
        c.ch = 32
        c.chMult = chMult
        c.numResBlocks = 1
        c.resolution = 16
        c.attnResolutions = [4]
        c.nEmbed = 16
        return c
    }

    func testKLShapesAndReferenceKeys() {
        var g = RandomGenerator(seed: 1)
        let model = AutoencoderKL(smallConfig(), generator: &g)
        let x = Tensor.randomNormal([2, 1, 16, 16], generator: &g)
        let posterior = withoutGrad { model.encode(x) }
        XCTAssertEqual(posterior.mean.shape, [2, 4, 4, 4])  // f = 4
        XCTAssertEqual(withoutGrad { model.decode(posterior.mode()) }.shape, [2, 1, 16, 16])
        let names = Set(model.namedParameters().map(\.0))
        for key in ["encoder.conv_in.weight", "encoder.down.0.block.0.norm1.weight", "encoder.down.0.downsample.conv.weight",
                    "encoder.down.1.block.0.nin_shortcut.weight", "encoder.down.2.attn.0.q.weight",
                    "encoder.mid.block_1.conv1.weight", "encoder.mid.attn_1.proj_out.bias", "encoder.norm_out.weight",
                    "encoder.conv_out.weight", "quant_conv.weight", "post_quant_conv.weight",
                    "decoder.up.2.block.1.conv2.weight", "decoder.up.1.upsample.conv.weight", "decoder.conv_out.weight"] {
            XCTAssertTrue(names.contains(key), "missing \(key)")
        }
        XCTAssertFalse(names.contains("decoder.up.0.upsample.conv.weight"), "level 0 of the decoder has no upsample")
        XCTAssertEqual(model.namedParameters().first { $0.0 == "encoder.conv_out.weight" }?.1.shape, [8, 128, 3, 3])
    }

    func testVQShapesAndCodebookInit() {
        var g = RandomGenerator(seed: 2)
        let model = VQModel(smallConfig(.vq, chMult: [1, 2]), generator: &g)
        let codebook = model.quantize.embedding.weight
        XCTAssertEqual(codebook.shape, [16, 4])
        XCTAssertLessThanOrEqual(codebook.maxValue(), 1 / 16)
        XCTAssertGreaterThanOrEqual(codebook.minValue(), -1 / 16)
        let x = Tensor.randomNormal([1, 1, 16, 16], generator: &g)
        let h = withoutGrad { model.encode(x) }
        XCTAssertEqual(h.shape, [1, 4, 8, 8])  // f = 2
        XCTAssertEqual(withoutGrad { model.decode(h).image }.shape, [1, 1, 16, 16])
    }

    func testKLDivergenceFormula() {
        let mean = Tensor(shape: [1, 2, 1, 1], scalars: [0.5, -1])
        let logvar = Tensor(shape: [1, 2, 1, 1], scalars: [0.2, -0.4])
        let kl = DiagonalGaussian(mean: mean, logVariance: logvar).kl()
        let expected = zip([0.5, -1.0], [0.2, -0.4]).map { m, lv in 0.5 * (m * m + exp(lv) - 1 - lv) }.reduce(0, +)
        XCTAssertEqual(Double(kl.item), expected, accuracy: 1e-6)
    }

    func testLogVarianceIsClamped() {
        let moments = Tensor(shape: [1, 2, 1, 1], scalars: [0, 100])
        XCTAssertEqual(DiagonalGaussian(moments: moments).logVariance.item, 20)
    }
}
