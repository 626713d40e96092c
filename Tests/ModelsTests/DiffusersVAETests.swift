import Checkpoint
import Foundation
import XCTest
@testable import Models
import NN
import Tensor

/// diffusers AutoencoderKL interop, against a model made and run by diffusers
/// (Tests/Fixtures/generate_diffusers_vae_fixture.py).
final class DiffusersVAETests: XCTestCase {
    var temporaryDirectory: URL!

    override func setUpWithError() throws {
        temporaryDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("diffusers-vae-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: temporaryDirectory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: temporaryDirectory)
    }

    func importFixture() throws -> (AutoencoderKL, Double?) {
        let (weights, config) = try DiffusersVAE.locate(fixtureURL("diffusers_vae"), configJSON: nil)
        return try DiffusersVAE.importModel(weights: weights, config: config)
    }

    func testImportedModelReproducesDiffusers() throws {
        let (model, scalingFactor) = try importFixture()
        XCTAssertEqual(scalingFactor, 0.5)
        let c = model.config
        XCTAssertEqual([c.ch, c.numResBlocks, c.zChannels, c.embedDim, c.resolution, c.inChannels, c.outChannels], [32, 1, 4, 4, 8, 3, 3])
        XCTAssertEqual(c.chMult, [1, 1])
        XCTAssertEqual(c.attnResolutions, [])
        let io = try SafeTensors.read(fixtureURL("diffusers_vae_io.safetensors"))
        let posterior = withoutGrad { model.encode(try! io.tensor(named: "input")) }
        assertClose(posterior.mean, try io.tensor(named: "posterior_mean"), atol: 1e-4, rtol: 1e-4)
        assertClose(posterior.logVariance, try io.tensor(named: "posterior_logvar"), atol: 1e-4, rtol: 1e-4)
        assertClose(withoutGrad { model.decode(posterior.mode()) }, try io.tensor(named: "decoded"), atol: 1e-4, rtol: 1e-4)
    }

    func testConfigTranslationBothWays() throws {
        let url = fixtureURL("diffusers_vae/config.json")
        let original = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        let ours = try DiffusersVAE.autoencoderConfig(fromDiffusersConfig: original, source: url.path)
        let back = try DiffusersVAE.diffusersConfig(for: ours, scalingFactor: 0.5)
        for key in ["block_out_channels", "layers_per_block", "latent_channels", "in_channels", "out_channels", "sample_size",
                    "norm_num_groups", "act_fn", "down_block_types", "up_block_types", "scaling_factor"] {
            XCTAssertEqual("\(back[key]!)", "\(original[key]!)", key)
        }
        var wide = ours
        wide.ch = 64
        wide.chMult = [1, 2, 4, 4]
        wide.resolution = 256
        XCTAssertEqual(try DiffusersVAE.diffusersConfig(for: wide, scalingFactor: 1)["block_out_channels"] as? [Int], [64, 128, 256, 256])
    }

    /// A model whose levels differ in width (conv_shortcut) exports exactly the key names and
    /// shapes diffusers gives such a model.
    func testExportedKeysMatchDiffusersLayout() throws {
        let shapes = try JSONSerialization.jsonObject(with: Data(contentsOf: fixtureURL("diffusers_vae_shortcut_keys.json"))) as! [String: [Int]]
        var config = try DiffusersVAE.autoencoderConfig(
            fromDiffusersConfig: ["block_out_channels": [32, 64], "layers_per_block": 1, "latent_channels": 4, "sample_size": 8],
            source: "test")
        XCTAssertEqual(config.chMult, [1, 2])
        config.resolution = 8
        var g = RandomGenerator(seed: 1)
        let exported = try DiffusersVAE.diffusersStateDict(from: AutoencoderKL(config, generator: &g))
        XCTAssertEqual(Set(exported.keys), Set(shapes.keys))
        for (key, shape) in shapes { XCTAssertEqual(exported[key]?.shape, shape, key) }
        XCTAssertNotNil(exported["decoder.up_blocks.1.resnets.0.conv_shortcut.weight"])
    }

    func testExportImportRoundTripIsExact() throws {
        var config = AutoencoderConfig()
        config.inChannels = 3
        config.outChannels = 3
        config.ch = 32
        config.chMult = [1, 2]
        config.numResBlocks = 2
        config.resolution = 16
        config.attnResolutions = [64]  // a resolution no level has: no attention blocks, still expressible
        config.zChannels = 4
        config.embedDim = 4
        var g = RandomGenerator(seed: 2)
        let model = AutoencoderKL(config, generator: &g)
        for (_, t) in model.namedParameters() { t.assign(Tensor.randomNormal(t.shape, generator: &g)) }  // no default zeros/ones
        let directory = temporaryDirectory.appendingPathComponent("export")
        try DiffusersVAE.export(model, scalingFactor: 0.18215, to: directory)
        let (weights, configURL) = try DiffusersVAE.locate(directory, configJSON: nil)
        let (imported, factor) = try DiffusersVAE.importModel(weights: weights, config: configURL)
        XCTAssertEqual(factor, 0.18215)
        let before = model.stateDict(), after = imported.stateDict()
        XCTAssertEqual(Set(before.keys), Set(after.keys))
        for (key, t) in before { XCTAssertEqual(after[key]!.scalars, t.scalars, key) }
        // And through our own file format, as the CLI does.
        let ours = temporaryDirectory.appendingPathComponent("autoencoder.safetensors")
        try FirstStageModel.save(.kl(imported), config: imported.config, step: 0, to: ours,
                                 extraMetadata: [DiffusersVAE.scalingFactorMetadataKey: "0.18215"])
        guard case .kl(let reloaded) = try FirstStageModel.load(from: ours) else { return XCTFail("not KL") }
        XCTAssertEqual(try SafeTensors.read(ours).metadata[DiffusersVAE.scalingFactorMetadataKey], "0.18215")
        for (key, t) in reloaded.stateDict() { XCTAssertEqual(before[key]!.scalars, t.scalars, key) }
    }

    func testRefusesConfigurationsDiffusersCannotExpress() {
        func reasons(_ change: (inout AutoencoderConfig) -> Void) -> String {
            var c = tinyAutoencoderConfig(attention: [])
            change(&c)
            var g = RandomGenerator(seed: 3)
            XCTAssertThrowsError(try DiffusersVAE.diffusersConfig(for: c, scalingFactor: 1))
            if c.regularizer == .kl {
                XCTAssertThrowsError(try DiffusersVAE.diffusersStateDict(from: AutoencoderKL(c, generator: &g)))
            }
            return DiffusersVAE.unsupportedReasons(c).joined(separator: "; ")
        }
        XCTAssertTrue(reasons { $0.attnResolutions = [4] }.contains("attention only in the mid block"))
        XCTAssertTrue(reasons { $0.chMult = [2, 2] }.contains("ch_mult"))
        XCTAssertTrue(reasons { $0.embedDim = 3 }.contains("embed_dim"))
        XCTAssertTrue(reasons { $0.regularizer = .vq }.contains("KL"))
        XCTAssertEqual(DiffusersVAE.unsupportedReasons(tinyAutoencoderConfig(attention: [])), [])
    }

    func testRefusesDiffusersConfigsWeCannotExpress() {
        func message(_ json: [String: Any]) -> String {
            var base: [String: Any] = ["block_out_channels": [32, 64], "layers_per_block": 1, "sample_size": 8]
            base.merge(json) { _, new in new }
            do {
                _ = try DiffusersVAE.autoencoderConfig(fromDiffusersConfig: base, source: "cfg.json")
                XCTFail("accepted \(json)")
                return ""
            } catch {
                return "\(error)"
            }
        }
        XCTAssertTrue(message(["down_block_types": ["DownEncoderBlock2D", "AttnDownEncoderBlock2D"]]).contains("AttnDownEncoderBlock2D"))
        XCTAssertTrue(message(["block_out_channels": [32, 48]]).contains("multiples"))
        XCTAssertTrue(message(["use_quant_conv": false]).contains("use_quant_conv"))
        XCTAssertTrue(message(["mid_block_add_attention": false]).contains("mid_block_add_attention"))
        XCTAssertTrue(message(["norm_num_groups": 16]).contains("norm_num_groups"))
        XCTAssertTrue(message(["_class_name": "AutoencoderTiny"]).contains("AutoencoderTiny"))
        XCTAssertTrue(message(["sample_size": 12, "block_out_channels": [32, 32, 32, 32]]).contains("not divisible"))
        XCTAssertTrue(message(["in_channels": 4]).hasPrefix("cfg.json"))
    }

    func testWeightProblemsAreAllReportedByName() throws {
        let (weights, config) = try DiffusersVAE.locate(fixtureURL("diffusers_vae"), configJSON: nil)
        var tensors = try SafeTensors.read(weights).allTensors()
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: config)) as! [String: Any]
        let ours = try DiffusersVAE.autoencoderConfig(fromDiffusersConfig: json, source: config.path)
        tensors["encoder.conv_norm_out.gamma"] = tensors.removeValue(forKey: "encoder.conv_norm_out.weight")
        tensors["decoder.conv_in.bias"] = Tensor(zeros: [7])
        XCTAssertThrowsError(try DiffusersVAE.ldmStateDict(fromDiffusers: tensors, config: ours, source: "vae.safetensors")) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("encoder.conv_norm_out.weight: missing"), message)
            XCTAssertTrue(message.contains("encoder.conv_norm_out.gamma: unexpected"), message)
            XCTAssertTrue(message.contains("decoder.conv_in.bias: expected [32], got [7]"), message)
        }
    }

    /// Older diffusers files name the mid attention query/key/value/proj_attn.
    func testLegacyAttentionNamesImport() throws {
        let (weights, config) = try DiffusersVAE.locate(fixtureURL("diffusers_vae"), configJSON: nil)
        let tensors = try SafeTensors.read(weights).allTensors()
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: config)) as! [String: Any]
        let ours = try DiffusersVAE.autoencoderConfig(fromDiffusersConfig: json, source: config.path)
        var legacy: [String: Tensor] = [:]
        for (key, t) in tensors {
            var name = key
            for (new, old) in DiffusersVAE.legacyAttentionNames { name = name.replacingOccurrences(of: new, with: old) }
            legacy[name] = t
        }
        XCTAssertNotNil(legacy["encoder.mid_block.attentions.0.proj_attn.weight"])
        let modern = try DiffusersVAE.ldmStateDict(fromDiffusers: tensors, config: ours, source: "modern")
        let old = try DiffusersVAE.ldmStateDict(fromDiffusers: legacy, config: ours, source: "legacy")
        for (key, t) in modern { XCTAssertEqual(old[key]!.scalars, t.scalars, key) }
        XCTAssertEqual(modern["encoder.mid.attn_1.q.weight"]?.shape, [32, 32, 1, 1])
    }

    func testLocateErrors() {
        XCTAssertThrowsError(try DiffusersVAE.locate(temporaryDirectory, configJSON: nil)) { error in
            XCTAssertTrue("\(error)".contains("diffusion_pytorch_model.safetensors"), "\(error)")
        }
    }
}
