import Checkpoint
import Foundation
import XCTest
@testable import Models
import NN
import Tensor

/// The text encoder τ_θ (x_transformer's TransformerWrapper + Encoder): reference key names,
/// finite-difference gradients, padding masked, and a text-conditional LatentDiffusion.
final class TextConditionerTests: XCTestCase {
    static let words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "photo", "of", "an", "ankle", "boot", "bag", "picture"]

    func tokenizer() throws -> WordPieceTokenizer {
        WordPieceTokenizer(vocabulary: try WordPieceVocabulary(tokens: Self.words, source: "test"))
    }

    func transformer(depth: Int = 2, seed: UInt64 = 1) -> TextTransformer {
        var g = RandomGenerator(seed: seed)
        return TextTransformer(vocabularySize: Self.words.count, maxLength: 6, dim: 8, depth: depth, heads: 2, headChannels: 4,
                               generator: &g)
    }

    func testStateDictKeysAreTheReferences() {
        let keys = Set(transformer(depth: 1).stateDict().keys)
        XCTAssertEqual(keys, [
            "token_emb.weight", "pos_emb.emb.weight",
            "attn_layers.layers.0.0.weight", "attn_layers.layers.0.0.bias",
            "attn_layers.layers.0.1.to_q.weight", "attn_layers.layers.0.1.to_k.weight", "attn_layers.layers.0.1.to_v.weight",
            "attn_layers.layers.0.1.to_out.weight", "attn_layers.layers.0.1.to_out.bias",
            "attn_layers.layers.1.0.weight", "attn_layers.layers.1.0.bias",
            "attn_layers.layers.1.1.net.0.0.weight", "attn_layers.layers.1.1.net.0.0.bias",
            "attn_layers.layers.1.1.net.2.weight", "attn_layers.layers.1.1.net.2.bias",
            "norm.weight", "norm.bias",
        ])
        // The reference initialises both embeddings N(0, 0.02).
        let emb = transformer().tokenEmb.weight.scalars
        let std = (emb.map { $0 * $0 }.reduce(0, +) / Float(emb.count)).squareRoot()
        XCTAssertEqual(std, 0.02, accuracy: 0.006)
    }

    /// Against the reference module in PyTorch (Tests/Fixtures/generate_text_encoder_fixture.py):
    /// its state dict loads strictly and the real tokens' outputs agree.
    func testMatchesTheReferenceTransformerWrapper() throws {
        let file = try SafeTensors.read(fixtureURL("text_encoder.safetensors"))
        let t = transformer()
        try t.load(stateDict: try tensors(in: file, prefix: "model."), strict: true)
        let ids = try file.tensor(named: "ids").scalars.map { Int($0) }
        let mask = try file.tensor(named: "mask").scalars.map { $0 == 0 }
        let rows = [Array(mask[0..<6]), Array(mask[6..<12])]
        let out = withoutGrad { t(ids: ids, batch: 2, paddingMask: rows) }
        let expected = try file.tensor(named: "output")
        for (b, row) in rows.enumerated() {
            let real = row.firstIndex(of: true) ?? 6
            assertClose(out.slice(alongAxis: 0, b..<b + 1).slice(alongAxis: 1, 0..<real),
                        expected.slice(alongAxis: 0, b..<b + 1).slice(alongAxis: 1, 0..<real), atol: 2e-5, rtol: 2e-5)
        }
    }

    func testGradientsThroughTheEncoder() {
        let t = transformer()
        var g = RandomGenerator(seed: 9)
        // LayerNorm affine parameters start at 1/0; move them so every path is exercised.
        for (name, p) in t.namedParameters() where name.contains("layers") || name.hasPrefix("norm") { g.fillNormal(p.buffer, std: 0.5) }
        for p in [t.tokenEmb.weight, t.posEmb.emb.weight] { g.fillNormal(p.buffer, std: 0.5) }
        let ids = [2, 4, 5, 6, 3, 0, 2, 8, 9, 3, 0, 0]
        let mask = [[false, false, false, false, false, true], [false, false, false, false, true, true]]
        let checked = t.namedParameters().filter { name, _ in
            ["token_emb.weight", "pos_emb.emb.weight", "attn_layers.layers.0.1.to_q.weight", "attn_layers.layers.0.1.to_v.weight",
             "attn_layers.layers.2.0.weight", "attn_layers.layers.3.1.net.0.0.weight", "norm.bias"].contains(name)
        }.map(\.1)
        XCTAssertEqual(checked.count, 7)
        assertGradientsMatch(checked, epsilon: 1e-2, atol: 2e-3, rtol: 2e-2, maxElements: 12) { _ in
            t(ids: ids, batch: 2, paddingMask: mask)
        }
    }

    func testPaddingDoesNotChangeTheUnmaskedOutputs() {
        let t = transformer()
        let mask = [[false, false, false, false, true, true]]
        let base = withoutGrad { t(ids: [2, 8, 9, 3, 0, 0], batch: 1, paddingMask: mask) }
        // Other ids at the padded positions: the real tokens' outputs stay exactly the same.
        let other = withoutGrad { t(ids: [2, 8, 9, 3, 10, 5], batch: 1, paddingMask: mask) }
        assertClose(base.slice(alongAxis: 1, 0..<4), other.slice(alongAxis: 1, 0..<4), atol: 0, rtol: 0)
        // Without the mask they would not (so the comparison above can fail).
        let unmasked = withoutGrad { t(ids: [2, 8, 9, 3, 10, 5], batch: 1, paddingMask: nil) }
        XCTAssertNotNil(closenessFailure(base.slice(alongAxis: 1, 0..<4), unmasked.slice(alongAxis: 1, 0..<4), atol: 1e-4, rtol: 1e-4))
    }

    func textModelConfig() -> LatentDiffusionConfig {
        var c = tinyLatentDiffusionConfig(inChannels: 2)
        c.unet.contextDim = 8
        c.unet.useSpatialTransformer = true
        c.unet.legacy = false
        c.conditioning.key = .crossattn
        c.conditioning.encoder = .text
        var text = TextEncoderConfig()
        text.vocabSize = Self.words.count
        text.maxSeqLen = 8
        text.nLayer = 1
        text.heads = 2
        text.dimHead = 4
        c.conditioning.text = text
        return c
    }

    func testTextConditionedUNetIgnoresPaddingAndCaptionsChangeTheOutput() throws {
        var g = RandomGenerator(seed: 2)
        let model = LatentDiffusion(textModelConfig(), generator: &g, vocabulary: try tokenizer().vocabulary)
        var r = RandomGenerator(seed: 3)
        for p in model.unet.parameters() { r.fillNormal(p.buffer, std: 0.2) }
        let x = randn([2, 2, 4, 4], seed: 4)
        let c = try model.conditioning(ConditionBatch(count: 2, captions: ["a photo of an ankle boot", "a bag"]), dropped: [])
        XCTAssertEqual(c.context?.tokens.shape, [2, 8, 8])
        XCTAssertEqual(c.context?.paddingMask?[1], [false, false, false, false, true, true, true, true])
        let out = withoutGrad { model.apply(x, timesteps: [10, 10], conditioning: c) }
        // Scribble over the padded context rows: the UNet's output must not move.
        let tokens = c.context!.tokens.scalars
        var scribbled = tokens
        for j in 4..<8 { for k in 0..<8 { scribbled[(8 + j) * 8 + k] = Float(j * k) - 7 } }
        let noisy = CrossAttentionContext(tokens: Tensor(shape: [2, 8, 8], scalars: scribbled), paddingMask: c.context!.paddingMask)
        assertClose(out, withoutGrad { model.apply(x, timesteps: [10, 10], conditioning: UNetConditioning(context: noisy)) }, atol: 0, rtol: 0)
        // Another caption does change it; dropping a caption gives the empty-caption (null) context.
        let other = try model.conditioning(ConditionBatch(count: 2, captions: ["a picture of a bag", "a bag"]), dropped: [])
        let changed = withoutGrad { model.apply(x, timesteps: [10, 10], conditioning: other) }
        XCTAssertNotNil(closenessFailure(out.slice(alongAxis: 0, 0..<1), changed.slice(alongAxis: 0, 0..<1), atol: 1e-4, rtol: 1e-4))
        assertClose(out.slice(alongAxis: 0, 1..<2), changed.slice(alongAxis: 0, 1..<2), atol: 0, rtol: 0)
        let dropped = try model.conditioning(ConditionBatch(count: 2, captions: ["a bag", "a bag"]), dropped: [true, false])
        assertClose(dropped.context!.tokens.slice(alongAxis: 0, 0..<1), try model.unconditional(ConditionBatch(count: 1)).context!.tokens, atol: 1e-5, rtol: 1e-5)  // batched GEMMs: last bits only
        XCTAssertThrowsError(try model.conditioning(ConditionBatch(count: 2, labels: [0, 1]), dropped: [])) { error in
            XCTAssertEqual(error as? ConditionerError, .missingCaptions)
        }
    }

    func testGradientThroughTheTextPathOfTheModel() throws {
        var g = RandomGenerator(seed: 5)
        let model = LatentDiffusion(textModelConfig(), generator: &g, vocabulary: try tokenizer().vocabulary)
        var r = RandomGenerator(seed: 6)
        for p in model.parameters() { r.fillNormal(p.buffer, std: 0.2) }
        let x = randn([1, 2, 4, 4], seed: 7)
        let text = model.textConditioner!
        let params = [text.transformer.tokenEmb.weight, text.transformer.norm.weight!]
        assertGradientsMatch(params, epsilon: 1e-2, atol: 2e-3, rtol: 2e-2, maxElements: 12) { _ in
            let c = try! model.conditioning(ConditionBatch(count: 1, captions: ["an ankle boot"]), dropped: [])
            return model.apply(x, timesteps: [30], conditioning: c)
        }
    }

    func testTruncatedCaptionsAreCounted() throws {
        var g = RandomGenerator(seed: 8)
        let model = LatentDiffusion(textModelConfig(), generator: &g, vocabulary: try tokenizer().vocabulary)
        let long = Array(repeating: "a photo of a bag", count: 3).joined(separator: " ")
        _ = try model.conditioning(ConditionBatch(count: 3, captions: ["a bag", long, long]), dropped: [])
        XCTAssertEqual(model.textConditioner?.truncatedCaptions, 2)
        XCTAssertEqual(model.textConditioner?.firstTruncatedCaption, long)
    }

    func testSavedTextModelCarriesItsVocabulary() throws {
        var g = RandomGenerator(seed: 10)
        let model = LatentDiffusion(textModelConfig(), generator: &g, vocabulary: try tokenizer().vocabulary)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("text-ldm-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try model.save(to: url)
        let (loaded, _) = try LatentDiffusion.load(from: url)
        XCTAssertEqual(loaded.textConditioner?.tokenizer.vocabulary.tokens, Self.words)
        let a = try model.conditioning(ConditionBatch(count: 1, captions: ["a photo of an ankle boot"]), dropped: [])
        let b = try loaded.conditioning(ConditionBatch(count: 1, captions: ["a photo of an ankle boot"]), dropped: [])
        assertClose(a.context!.tokens, b.context!.tokens, atol: 0, rtol: 0)
        XCTAssertTrue(model.stateDict().keys.contains("cond_stage_model.transformer.attn_layers.layers.1.1.net.2.weight"))
    }

    func testTextConfigMistakesAreNamed() {
        var c = textModelConfig()
        c.conditioning.numClasses = 10
        c.conditioning.text?.maxSeqLen = 1
        let errors = c.validationErrors().joined(separator: "\n")
        XCTAssertTrue(errors.contains("model.conditioning.num_classes is for encoder class"), errors)
        XCTAssertTrue(errors.contains("model.conditioning.text.max_seq_len must be at least 2"), errors)
        var adm = textModelConfig()
        adm.conditioning.key = .adm
        adm.unet.contextDim = nil
        XCTAssertTrue(adm.validationErrors().joined().contains("encoder text needs key crossattn"))
    }
}
