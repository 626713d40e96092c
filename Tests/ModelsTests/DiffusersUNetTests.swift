import Checkpoint
import Foundation
import XCTest
@testable import Models
import NN
import Tensor

/// diffusers UNet2DConditionModel interop, against models made and run by diffusers
/// (Tests/Fixtures/generate_diffusers_unet_fixture.py): `diffusers_unet` (attention at level 1,
/// 4 heads, cross_attention_dim 24) and `diffusers_unet_class` (attention at level 0 with heads
/// (2, 4), i.e. 16 channels each, num_class_embeds 5, scale_shift, transformer depth 2).
final class DiffusersUNetTests: XCTestCase {
    var temporaryDirectory: URL!

    override func setUpWithError() throws {
        temporaryDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("diffusers-unet-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: temporaryDirectory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: temporaryDirectory)
    }

    static let fixtures = [("unet", "diffusers_unet"), ("class", "diffusers_unet_class")]

    func importFixture(_ directory: String) throws -> (UNetModel, Int?) {
        let (weights, config) = try DiffusersUNet.locate(fixtureURL(directory), configJSON: nil)
        return try DiffusersUNet.importModel(weights: weights, config: config)
    }

    func fixtureJSON(_ directory: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: fixtureURL(directory + "/config.json"))) as! [String: Any]
    }

    /// Our forward on the inputs `<prefix>.x, timesteps, context, class_labels` of an io file.
    func forward(_ model: UNetModel, io: SafeTensorsFile, prefix: String) throws -> Tensor {
        let x = try io.tensor(named: "\(prefix).x")
        let timesteps = try io.tensor(named: "\(prefix).timesteps").scalars.map(Double.init)
        let context = io.contains("\(prefix).context") ? CrossAttentionContext(tokens: try io.tensor(named: "\(prefix).context")) : nil
        let labels = io.contains("\(prefix).class_labels") ? try io.tensor(named: "\(prefix).class_labels").scalars.map { Int($0) } : nil
        return withoutGrad { model(x, timesteps: timesteps, context: context, y: labels) }
    }

    // MARK: - Against diffusers

    func testImportedUNetsReproduceDiffusers() throws {
        let io = try SafeTensors.read(fixtureURL("diffusers_unet_io.safetensors"))
        for (prefix, directory) in Self.fixtures {
            let (model, sampleSize) = try importFixture(directory)
            XCTAssertEqual(sampleSize, 8)
            assertClose(try forward(model, io: io, prefix: prefix), try io.tensor(named: "\(prefix).output"), atol: 1e-4, rtol: 1e-4)
        }
        let (plain, _) = try importFixture("diffusers_unet")
        let c = plain.config
        XCTAssertEqual([c.modelChannels, c.numResBlocks, c.inChannels, c.outChannels, c.transformerDepth, c.numHeads], [32, 1, 4, 4, 1, 4])
        XCTAssertEqual(c.channelMult, [1, 2])
        XCTAssertEqual(c.attentionResolutions, [2])
        XCTAssertEqual(c.contextDim, 24)
        XCTAssertNil(c.numClasses)
        XCTAssertFalse(c.useScaleShiftNorm)
        XCTAssertEqual(c.heads(channels: 64).heads, 4)
        XCTAssertEqual(c.heads(channels: 64).headChannels, 16)
        let (withClasses, _) = try importFixture("diffusers_unet_class")
        let k = withClasses.config
        XCTAssertEqual(k.attentionResolutions, [1])
        XCTAssertEqual([k.numHeads, k.numHeadChannels, k.transformerDepth], [-1, 16, 2])
        XCTAssertEqual(k.numClasses, 5)
        XCTAssertTrue(k.useScaleShiftNorm)
    }

    /// Import then export gives back diffusers' own files: the same keys, shapes and values, and
    /// every config.json entry.
    func testExportReproducesTheDiffusersFiles() throws {
        for (_, directory) in Self.fixtures {
            let (model, sampleSize) = try importFixture(directory)
            let out = temporaryDirectory.appendingPathComponent(directory)
            try DiffusersUNet.export(model, sampleSize: sampleSize, to: out)
            let original = try SafeTensors.read(fixtureURL(directory + "/" + DiffusersUNet.weightsFileName))
            let exported = try SafeTensors.read(out.appendingPathComponent(DiffusersUNet.weightsFileName))
            XCTAssertEqual(exported.names, original.names, directory)
            for name in original.names {
                XCTAssertEqual(try exported.shape(of: name), try original.shape(of: name), name)
                XCTAssertEqual(try exported.tensor(named: name).scalars, try original.tensor(named: name).scalars, name)
            }
            let fixtureConfig = try fixtureJSON(directory)
            let ours = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("config.json"))) as! [String: Any]
            let ignored: Set<String> = ["_name_or_path", "_use_default_values"]
            XCTAssertEqual(Set(ours.keys), Set(fixtureConfig.keys).subtracting(ignored), directory)
            for (key, value) in fixtureConfig where !ignored.contains(key) {
                XCTAssertTrue(DiffusersUNet.sameJSON(ours[key] ?? "<absent>", value),
                              "\(directory) \(key): ours \(DiffusersUNet.render(ours[key] ?? "<absent>")), diffusers \(DiffusersUNet.render(value))")
            }
            // And diffusers' config → ours → diffusers' → ours is stable.
            let config = try DiffusersUNet.unetConfig(fromDiffusersConfig: fixtureConfig, source: directory)
            XCTAssertEqual(try DiffusersUNet.unetConfig(fromDiffusersConfig: DiffusersUNet.diffusersConfig(for: config, sampleSize: 8),
                                                        source: "back"), config)
        }
    }

    // MARK: - Key mapping

    static func config(mc: Int = 32, mult: [Int] = [1, 2], resBlocks: Int = 1, attention: [Int] = [2], heads: Int = 4,
                       headChannels: Int = -1, depth: Int = 1, context: Int? = 24, classes: Int? = nil,
                       scaleShift: Bool = false) -> UNetConfig {
        var c = UNetConfig()
        c.modelChannels = mc
        c.channelMult = mult
        c.numResBlocks = resBlocks
        c.attentionResolutions = attention
        c.numHeads = headChannels == -1 ? heads : -1
        c.numHeadChannels = headChannels
        c.useSpatialTransformer = true
        c.transformerDepth = depth
        c.contextDim = context
        c.numClasses = classes
        c.useScaleShiftNorm = scaleShift
        c.legacy = false
        return c
    }

    static let mappingConfigs: [UNetConfig] = [
        config(),
        config(attention: [1, 2], headChannels: 16, depth: 2, classes: 5, scaleShift: true),
        // The trainer's class-conditional and unconditional shapes: three levels, two res blocks.
        config(mc: 32, mult: [1, 2, 2], resBlocks: 2, attention: [2, 4], headChannels: 32, context: 16),
        config(mc: 32, mult: [1, 2, 2], resBlocks: 2, attention: [2, 4], headChannels: 32, context: nil),
        config(mc: 32, mult: [1, 1, 2, 2], resBlocks: 3, attention: [1, 4], heads: 2, context: 8, classes: 3),
        config(mc: 32, mult: [1], resBlocks: 2, attention: [], heads: 1, context: nil),
    ]

    /// Every key of our UNet has a diffusers name, no two share one, and it maps back to itself.
    func testKeyMappingIsAnIdentityOverEveryKey() throws {
        for (index, config) in Self.mappingConfigs.enumerated() {
            var g = RandomGenerator(seed: UInt64(index))
            let model = UNetModel(config, generator: &g)
            let layout = DiffusersUNet.Layout(config)
            var seen: [String: String] = [:]
            for (key, _) in model.orderedStateDict() {
                guard let name = DiffusersUNet.diffusersKey(forLDMKey: key, layout: layout) else {
                    XCTFail("config \(index): \(key) has no diffusers name")
                    continue
                }
                XCTAssertNil(seen[name], "config \(index): \(key) and \(seen[name] ?? "") both map to \(name)")
                seen[name] = key
                XCTAssertEqual(DiffusersUNet.ldmKey(forDiffusersKey: name, layout: layout), key, "config \(index): \(name)")
                XCTAssertFalse(name.contains("input_blocks") || name.contains("output_blocks") || name.contains("middle_block")
                               || name.contains("in_layers") || name.contains("out_layers") || name.contains("emb_layers"),
                               "config \(index): \(key) → \(name)")
            }
            XCTAssertEqual(seen.count, model.orderedStateDict().count)
            // The exported config describes the same network: it rebuilds every key and shape.
            let json = try DiffusersUNet.diffusersConfig(for: config, sampleSize: nil)
            let back = try DiffusersUNet.unetConfig(fromDiffusersConfig: json, source: "config \(index)")
            XCTAssertEqual(back.contextDim, config.contextDim, "config \(index)")
            var g2 = RandomGenerator(seed: 0)
            let rebuilt = UNetModel(back, generator: &g2).orderedStateDict().map { "\($0.0) \($0.1.shape)" }
            XCTAssertEqual(rebuilt, model.orderedStateDict().map { "\($0.0) \($0.1.shape)" }, "config \(index)")
            for (level, mult) in config.channelMult.enumerated() where config.attentionResolutions.contains(1 << level) {
                XCTAssertEqual(back.heads(channels: mult * 32).heads, config.heads(channels: mult * 32).heads, "config \(index) level \(level)")
            }
            XCTAssertEqual(back.heads(channels: config.channelMult.last! * 32).heads,
                           config.heads(channels: config.channelMult.last! * 32).heads, "config \(index) mid")
        }
    }

    func testKeyMappingSamples() {
        let layout = DiffusersUNet.Layout(Self.config(mult: [1, 2, 2], resBlocks: 2, attention: [2, 4]))
        let expected = [
            "time_embed.0.weight": "time_embedding.linear_1.weight", "time_embed.2.bias": "time_embedding.linear_2.bias",
            "label_emb.weight": "class_embedding.weight", "input_blocks.0.0.weight": "conv_in.weight",
            "input_blocks.1.0.in_layers.0.weight": "down_blocks.0.resnets.0.norm1.weight",
            "input_blocks.2.0.emb_layers.1.weight": "down_blocks.0.resnets.1.time_emb_proj.weight",
            "input_blocks.3.0.op.weight": "down_blocks.0.downsamplers.0.conv.weight",
            "input_blocks.4.0.skip_connection.weight": "down_blocks.1.resnets.0.conv_shortcut.weight",
            "input_blocks.4.1.proj_in.weight": "down_blocks.1.attentions.0.proj_in.weight",
            "input_blocks.8.1.transformer_blocks.0.attn2.to_k.weight": "down_blocks.2.attentions.1.transformer_blocks.0.attn2.to_k.weight",
            "middle_block.0.out_layers.3.bias": "mid_block.resnets.0.conv2.bias",
            "middle_block.1.norm.weight": "mid_block.attentions.0.norm.weight",
            "middle_block.2.in_layers.2.weight": "mid_block.resnets.1.conv1.weight",
            "output_blocks.2.0.out_layers.0.bias": "up_blocks.0.resnets.2.norm2.bias",
            "output_blocks.2.2.conv.weight": "up_blocks.0.upsamplers.0.conv.weight",
            "output_blocks.5.1.proj_out.bias": "up_blocks.1.attentions.2.proj_out.bias",
            "output_blocks.8.0.skip_connection.bias": "up_blocks.2.resnets.2.conv_shortcut.bias",
            "out.0.weight": "conv_norm_out.weight", "out.2.bias": "conv_out.bias",
        ]
        for (ldm, diffusers) in expected {
            XCTAssertEqual(DiffusersUNet.diffusersKey(forLDMKey: ldm, layout: layout), diffusers, ldm)
            XCTAssertEqual(DiffusersUNet.ldmKey(forDiffusersKey: diffusers, layout: layout), ldm, diffusers)
        }
        // Level 0 has no attention and the last level no downsampler.
        XCTAssertNil(DiffusersUNet.diffusersKey(forLDMKey: "input_blocks.1.1.norm.weight", layout: layout))
        XCTAssertNil(DiffusersUNet.ldmKey(forDiffusersKey: "down_blocks.2.downsamplers.0.conv.weight", layout: layout))
        XCTAssertNil(DiffusersUNet.ldmKey(forDiffusersKey: "up_blocks.2.upsamplers.0.conv.weight", layout: layout))
        XCTAssertNil(DiffusersUNet.ldmKey(forDiffusersKey: "add_embedding.linear_1.weight", layout: layout))
    }

    // MARK: - Refusals

    func testRefusesConfigurationsDiffusersCannotExpress() {
        func reasons(_ change: (inout UNetConfig) -> Void) -> String {
            var c = Self.config()
            change(&c)
            XCTAssertThrowsError(try DiffusersUNet.diffusersConfig(for: c, sampleSize: 8))
            if c.validationErrors().isEmpty {
                var g = RandomGenerator(seed: 3)
                XCTAssertThrowsError(try DiffusersUNet.diffusersStateDict(from: UNetModel(c, generator: &g)))
            }
            return DiffusersUNet.unsupportedReasons(c).joined(separator: "; ")
        }
        XCTAssertTrue(reasons { $0.useSpatialTransformer = false; $0.contextDim = nil }.contains("AttentionBlocks"))
        XCTAssertTrue(reasons { $0.channelMult = [2, 2] }.contains("must start with 1"))
        XCTAssertTrue(reasons { $0.convResample = false }.contains("conv_resample"))
        XCTAssertTrue(reasons { $0.numHeads = 3 }.contains("num_heads"))  // invalid for us too: named by validation
        XCTAssertEqual(DiffusersUNet.unsupportedReasons(Self.config()), [])
    }

    func testRefusesDiffusersConfigsWeCannotExpress() throws {
        let base = try fixtureJSON("diffusers_unet")
        func message(_ changes: [String: Any]) -> String {
            let json = base.merging(changes) { _, new in new }
            do {
                _ = try DiffusersUNet.unetConfig(fromDiffusersConfig: json, source: "cfg.json")
                XCTFail("accepted \(changes)")
                return ""
            } catch {
                return "\(error)"
            }
        }
        let bothLevels: [String: Any] = ["down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
                                         "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]]
        let cases: [([String: Any], String)] = [
            (bothLevels.merging(["attention_head_dim": [4, 2]]) { $1 }, "one head count (num_heads) or one head width"),
            (["attention_head_dim": 3], "cannot be split into 3 heads"),
            (["up_block_types": ["UpBlock2D", "UpBlock2D"]], "level 1 has attention in down_blocks.1 but not in up_blocks.0"),
            (["up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]], "level 0 has attention in up_blocks.1 but not in down_blocks.0"),
            (["down_block_types": ["DownBlock2D", "SimpleCrossAttnDownBlock2D"]], "SimpleCrossAttnDownBlock2D"),
            (["mid_block_type": "UNetMidBlock2D"], "mid_block_type \"UNetMidBlock2D\""),
            (["mid_block_type": NSNull()], "mid_block_type null"),
            (["use_linear_projection": true], "use_linear_projection true: only false is supported"),
            (["norm_num_groups": 16], "norm_num_groups 16"),
            // Found by FuzzDiffusersConfig: a huge count grew the GroupNorm check's list without end.
            (["layers_per_block": 26666666661], "num_res_blocks must be at most 64"),
            (["norm_eps": 1e-6], "norm_eps"),
            (["class_embed_type": "timestep"], "class_embed_type \"timestep\""),
            (["addition_embed_type": "text_time"], "addition_embed_type"),
            (["resnet_time_scale_shift": "ada_group"], "resnet_time_scale_shift ada_group"),
            (["transformer_layers_per_block": [1, 2]], "transformer_depth is the same at every level"),
            (["transformer_layers_per_block": [[1], [2]]], "per-block depths"),
            (["layers_per_block": [1, 2]], "num_res_blocks is the same at every level"),
            (bothLevels.merging(["cross_attention_dim": [24, 32], "attention_head_dim": [2, 4]]) { $1 }, "share one context_dim"),
            (["block_out_channels": [32, 48]], "multiples"),
            (["only_cross_attention": true], "only_cross_attention"),
            (["time_embedding_type": "fourier"], "time_embedding_type"),
            (["flip_sin_to_cos": false], "flip_sin_to_cos"),
            (["freq_shift": 1], "freq_shift"),
            (["center_input_sample": true], "center_input_sample"),
            (["act_fn": "gelu"], "act_fn"),
            (["conv_in_kernel": 7], "conv_in_kernel"),
            (["time_embedding_dim": 64], "time_embedding_dim 64"),
            (["_class_name": "UNet2DModel"], "UNet2DModel"),
        ]
        for (changes, expected) in cases {
            let text = message(changes)
            XCTAssertTrue(text.contains(expected), "\(changes): \(text)")
            XCTAssertTrue(text.hasPrefix("cfg.json"), text)
        }
        // Several problems are all named at once.
        let several = message(["use_linear_projection": true, "act_fn": "gelu", "up_block_types": ["UpBlock2D", "UpBlock2D"]])
        for part in ["use_linear_projection", "act_fn", "level 1"] { XCTAssertTrue(several.contains(part), several) }
        // What is accepted: a wider first level, num_attention_heads, equal per-level lists,
        // cross_attention_dim per level (the same where attention is), a null time_embedding_dim.
        let wide = try DiffusersUNet.unetConfig(fromDiffusersConfig: base.merging(["block_out_channels": [64, 64]]) { $1 }, source: "t")
        XCTAssertEqual([wide.modelChannels] + wide.channelMult, [64, 1, 1])
        let named = try DiffusersUNet.unetConfig(fromDiffusersConfig: base.merging(["num_attention_heads": 2, "attention_head_dim": 9]) { $1 }, source: "t")
        XCTAssertEqual(named.heads(channels: 64).heads, 2)
        let lists = try DiffusersUNet.unetConfig(fromDiffusersConfig: base.merging(["layers_per_block": [2, 2], "transformer_layers_per_block": [2, 2],
                                                                                      "cross_attention_dim": [7, 24], "attention_head_dim": [1, 4]]) { $1 },
                                                 source: "t")
        XCTAssertEqual([lists.numResBlocks, lists.transformerDepth, lists.contextDim, lists.numHeads], [2, 2, 24, 4])
        let selfAttending = try DiffusersUNet.unetConfig(fromDiffusersConfig: base.merging(["cross_attention_dim": [32, 64]]) { $1 }, source: "t")
        XCTAssertNil(selfAttending.contextDim)
    }

    func testWeightProblemsAreAllReportedByName() throws {
        let (weights, configURL) = try DiffusersUNet.locate(fixtureURL("diffusers_unet"), configJSON: nil)
        var tensors = try SafeTensors.read(weights).allTensors()
        let config = try DiffusersUNet.unetConfig(fromDiffusersConfig: try fixtureJSON("diffusers_unet"), source: configURL.path)
        tensors["conv_norm_out.gamma"] = tensors.removeValue(forKey: "conv_norm_out.weight")
        tensors["conv_in.bias"] = Tensor(zeros: [7])
        tensors["add_embedding.linear_1.weight"] = Tensor(zeros: [2, 2])
        XCTAssertThrowsError(try DiffusersUNet.ldmStateDict(fromDiffusers: tensors, config: config, source: "unet.safetensors")) { error in
            let message = "\(error)"
            XCTAssertTrue(message.hasPrefix("unet.safetensors"), message)
            XCTAssertTrue(message.contains("conv_norm_out.weight: missing (expected [32], for out.0.weight)"), message)
            XCTAssertTrue(message.contains("conv_norm_out.gamma: unexpected"), message)
            XCTAssertTrue(message.contains("add_embedding.linear_1.weight: unexpected"), message)
            XCTAssertTrue(message.contains("conv_in.bias: expected [32], got [7]"), message)
        }
        // A config that does not match the weights: every resnet of the missing level is named.
        var other = config
        other.numResBlocks = 2
        XCTAssertThrowsError(try DiffusersUNet.ldmStateDict(fromDiffusers: try SafeTensors.read(weights).allTensors(), config: other,
                                                            source: "w")) { error in
            XCTAssertTrue("\(error)".contains("down_blocks.0.resnets.1.conv1.weight: missing"), "\(error)")
        }
    }

    // MARK: - Files

    /// The UNet-only file (import-unet) and a latent diffusion model (train-ldm) both export, and
    /// an export imports back to the same weights.
    func testUNetAndLatentDiffusionFilesExportAndReimport() throws {
        let (model, _) = try importFixture("diffusers_unet_class")
        let file = temporaryDirectory.appendingPathComponent("unet.safetensors")
        try DiffusersUNet.save(model, to: file, metadata: [DiffusersUNet.sampleSizeMetadataKey: "8"])
        let (reloaded, metadata, ldm) = try DiffusersUNet.loadAnyUNet(from: file)
        XCTAssertNil(ldm)
        XCTAssertEqual(reloaded.config, model.config)
        XCTAssertEqual(metadata[DiffusersUNet.sampleSizeMetadataKey], "8")
        XCTAssertNotNil(metadata[DiffusersUNet.configMetadataKey])
        for (key, t) in model.stateDict() { XCTAssertEqual(reloaded.stateDict()[key]!.scalars, t.scalars, key) }

        // An unconditional latent diffusion model (no context: cross_attention_dim per level).
        var config = LatentDiffusionConfig()
        config.unet = Self.config(mult: [1, 2, 2], resBlocks: 2, attention: [2, 4], headChannels: 32, context: nil)
        config.conditioning.key = .none
        var g = RandomGenerator(seed: 5)
        let diffusion = LatentDiffusion(config, generator: &g)
        for (_, t) in diffusion.namedParameters() { t.assign(Tensor.randomNormal(t.shape, std: 0.1, generator: &g)) }
        let ldmFile = temporaryDirectory.appendingPathComponent("ldm.safetensors")
        try diffusion.save(to: ldmFile)
        let (unet, _, loaded) = try DiffusersUNet.loadAnyUNet(from: ldmFile)
        XCTAssertNotNil(loaded)
        let out = temporaryDirectory.appendingPathComponent("export")
        try DiffusersUNet.export(unet, sampleSize: nil, to: out)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("config.json"))) as! [String: Any]
        XCTAssertEqual(json["cross_attention_dim"] as? [Int], [32, 64, 64])
        XCTAssertEqual(json["attention_head_dim"] as? [Int], [1, 2, 2])
        XCTAssertTrue(json["sample_size"] is NSNull)
        let (back, _) = try DiffusersUNet.importModel(weights: out.appendingPathComponent(DiffusersUNet.weightsFileName),
                                                      config: out.appendingPathComponent("config.json"))
        XCTAssertNil(back.config.contextDim)
        let before = diffusion.unet.stateDict(), after = back.stateDict()
        XCTAssertEqual(Set(before.keys), Set(after.keys))
        for (key, t) in before { XCTAssertEqual(after[key]!.scalars, t.scalars, key) }
        var x = RandomGenerator(seed: 6)
        let z = Tensor.randomNormal([1, 4, 8, 8], generator: &x)
        assertClose(withoutGrad { back(z, timesteps: [10]) }, withoutGrad { diffusion.unet(z, timesteps: [10]) }, atol: 0, rtol: 0)

        // Anything else is refused by name.
        let plain = temporaryDirectory.appendingPathComponent("plain.safetensors")
        try SafeTensors.write(["w": Tensor(zeros: [1])], to: plain)
        XCTAssertThrowsError(try DiffusersUNet.loadAnyUNet(from: plain)) { error in
            XCTAssertTrue("\(error)".contains("ldm.unet_config"), "\(error)")
        }
    }

    func testLocateFindsPipelineFolderAndNamesWhatIsMissing() throws {
        let pipeline = temporaryDirectory.appendingPathComponent("pipeline")
        try FileManager.default.createDirectory(at: pipeline, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: fixtureURL("diffusers_unet"), to: pipeline.appendingPathComponent("unet"))
        let (weights, config) = try DiffusersUNet.locate(pipeline, configJSON: nil)
        XCTAssertEqual(weights.lastPathComponent, DiffusersUNet.weightsFileName)
        XCTAssertEqual(config.deletingLastPathComponent().lastPathComponent, "unet")
        XCTAssertThrowsError(try DiffusersUNet.locate(temporaryDirectory, configJSON: nil)) { error in
            XCTAssertTrue("\(error)".contains("unet/"), "\(error)")
        }
        let lone = temporaryDirectory.appendingPathComponent("lone.safetensors")
        try FileManager.default.copyItem(at: weights, to: lone)
        XCTAssertThrowsError(try DiffusersUNet.locate(lone, configJSON: nil)) { error in
            XCTAssertTrue("\(error)".contains("--config-json"), "\(error)")
        }
        XCTAssertNoThrow(try DiffusersUNet.locate(lone, configJSON: config))
    }

    /// Not a check: with LDM_DIFFUSERS_UNET_CHECK_DIR set, writes random-weight models (an
    /// unconditional ldm.safetensors and a class-conditional adm one with scale-shift) and our
    /// outputs on fixed inputs, for checking `ldm export-unet` against diffusers by hand:
    ///   ldm export-unet --ldm $DIR/<name>.safetensors --out $DIR/<name>
    ///   python Tests/Fixtures/generate_diffusers_unet_fixture.py --check-export $DIR/<name> $DIR/io.safetensors <name>
    /// With LDM_DIFFUSERS_UNET_CHECK_MODEL also a trained model's UNet on its conditioner's context (name `trained`).
    func testWriteModelsForManualDiffusersCheck() throws {
        guard let directory = ProcessInfo.processInfo.environment["LDM_DIFFUSERS_UNET_CHECK_DIR"] else {
            throw XCTSkip("set LDM_DIFFUSERS_UNET_CHECK_DIR to write the manual-check models")
        }
        let dir = URL(fileURLWithPath: directory)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var io: [String: Tensor] = [:]
        var g = RandomGenerator(seed: 11)
        var uncond = LatentDiffusionConfig()
        uncond.unet = Self.config(mc: 64, mult: [1, 2, 2], resBlocks: 2, attention: [2, 4], headChannels: 32, context: nil)
        uncond.conditioning.key = .none
        var adm = LatentDiffusionConfig()
        adm.unet = Self.config(mc: 32, mult: [1, 2], resBlocks: 1, attention: [1, 2], heads: 2, depth: 2, context: nil, scaleShift: true)
        adm.conditioning.key = .adm
        adm.conditioning.numClasses = 10
        for (name, config) in [("uncond", uncond), ("adm", adm)] {
            let model = LatentDiffusion(config, generator: &g)
            for (key, t) in model.namedParameters() {
                if t.shape.count == 1 {  // biases 0.1·N, norm weights 1 + 0.1·N
                    t.assign(Tensor.randomNormal(t.shape, mean: key.hasSuffix("bias") ? 0 : 1, std: 0.1, generator: &g))
                } else {  // N / sqrt(fan_in), zero-initialised convs included
                    t.assign(Tensor.randomNormal(t.shape, std: 1 / Float(t.count / t.shape[0]).squareRoot(), generator: &g))
                }
            }
            try model.save(to: dir.appendingPathComponent("\(name).safetensors"), metadata: ["ldm.latent_shape": "4,8,8"])
            let x = Tensor.randomNormal([2, 4, 8, 8], generator: &g)
            let t: [Double] = [5, 803]
            let y: [Int]? = config.conditioning.key == .adm ? [3, 10] : nil
            io["\(name).x"] = x
            io["\(name).timesteps"] = Tensor(shape: [2], scalars: t.map { Float($0) })
            if let y { io["\(name).class_labels"] = Tensor(shape: [2], scalars: y.map { Float($0) }) }
            io["\(name).output"] = withoutGrad { model.unet(x, timesteps: t, y: y) }
        }
        // A trained model, if given (LDM_DIFFUSERS_UNET_CHECK_MODEL=…/ldm.safetensors): its UNet on
        // the context its conditioner gives two labels (or none).
        if let path = ProcessInfo.processInfo.environment["LDM_DIFFUSERS_UNET_CHECK_MODEL"] {
            let (model, metadata) = try LatentDiffusion.load(from: URL(fileURLWithPath: path))
            let shape = [2] + (metadata["ldm.latent_shape"] ?? "4,8,8").split(separator: ",").compactMap { Int($0) }
            let x = Tensor.randomNormal(shape, generator: &g)
            let t: [Double] = [5, 803]
            let c = try model.conditioning(ConditionBatch(count: 2, labels: model.condStageModel == nil ? nil : [0, 1]), dropped: [])
            io["trained.x"] = x
            io["trained.timesteps"] = Tensor(shape: [2], scalars: t.map { Float($0) })
            if let context = c.context { io["trained.context"] = context.tokens }
            if let y = c.classLabels { io["trained.class_labels"] = Tensor(shape: [2], scalars: y.map { Float($0) }) }
            io["trained.output"] = withoutGrad { model.unet(x, timesteps: t, context: c.context, y: c.classLabels) }
        }
        try SafeTensors.write(io, to: dir.appendingPathComponent("io.safetensors"))
    }
}
