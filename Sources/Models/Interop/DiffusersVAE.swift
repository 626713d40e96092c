import Checkpoint
import Foundation
import NN
import Tensor

/// Conversion between our AutoencoderKL (CompVis ldm key layout) and diffusers' AutoencoderKL
/// (`diffusion_pytorch_model.safetensors` + `config.json`).
///
/// The two describe the same network with different names:
/// - `encoder.down.i.block.j` ↔ `encoder.down_blocks.i.resnets.j` (`nin_shortcut` ↔ `conv_shortcut`),
///   `encoder.down.i.downsample.conv` ↔ `encoder.down_blocks.i.downsamplers.0.conv`;
/// - `decoder.up.i` ↔ `decoder.up_blocks.(L−1−i)`: diffusers numbers the decoder's levels in the
///   order they run (lowest resolution first), ldm by resolution level;
/// - `mid.block_1/attn_1/block_2` ↔ `mid_block.resnets.0/attentions.0/resnets.1`, and in the
///   attention `norm, q, k, v, proj_out` ↔ `group_norm, to_q, to_k, to_v, to_out.0`, where
///   diffusers' projections are Linear weights [C, C] and ours 1×1 convs [C, C, 1, 1];
/// - `norm_out` ↔ `conv_norm_out`; conv_in, conv_out, quant_conv, post_quant_conv are the same.
///
/// diffusers cannot express attention outside the mid block, a first level wider than
/// conv_in (ch_mult[0] ≠ 1), embed_dim ≠ z_channels, or a VQ model; those are refused.
public enum DiffusersVAE {
    /// The weights file name diffusers reads.
    public static let weightsFileName = "diffusion_pytorch_model.safetensors"
    public static let configFileName = "config.json"
    /// The diffusers version whose AutoencoderKL format this writes (and was tested against).
    public static let diffusersVersion = "0.42.1"
    /// Metadata key under which an imported model keeps diffusers' latent scaling factor.
    public static let scalingFactorMetadataKey = "diffusers.scaling_factor"

    /// A diffusers model or configuration that cannot be converted, with every reason.
    public struct ConversionError: Error, CustomStringConvertible {
        public let source: String
        public let reasons: [String]
        public init(source: String, _ reasons: [String]) {
            self.source = source
            self.reasons = reasons
        }
        public var description: String {
            reasons.count == 1 ? "\(source): \(reasons[0])" : "\(source):\n" + reasons.map { "  " + $0 }.joined(separator: "\n")
        }
    }

    // MARK: - Configuration

    /// Our configuration for a diffusers AutoencoderKL `config.json` (missing keys take
    /// diffusers' defaults).
    public static func autoencoderConfig(fromDiffusersConfig json: [String: Any], source: String) throws -> AutoencoderConfig {
        var reasons: [String] = []
        func int(_ key: String, _ fallback: Int) -> Int {
            guard let value = json[key] else { return fallback }
            if let i = value as? Int { return i }
            reasons.append("\(key) must be an integer, got \(value)")
            return fallback
        }
        if let name = json["_class_name"] as? String, name != "AutoencoderKL" {
            reasons.append("_class_name is \(name); only AutoencoderKL is supported")
        }
        let widths = (json["block_out_channels"] as? [Int]) ?? [64]
        // Missing block types: the plain blocks, one per level.
        let downTypes = (json["down_block_types"] as? [String]) ?? Array(repeating: "DownEncoderBlock2D", count: widths.count)
        let upTypes = (json["up_block_types"] as? [String]) ?? Array(repeating: "UpDecoderBlock2D", count: widths.count)
        if widths.isEmpty { reasons.append("block_out_channels is empty") }
        if downTypes.count != widths.count || upTypes.count != widths.count {
            reasons.append("down_block_types (\(downTypes.count)), up_block_types (\(upTypes.count)) and "
                           + "block_out_channels (\(widths.count)) must have one entry per level")
        }
        if let other = downTypes.first(where: { $0 != "DownEncoderBlock2D" }) {
            reasons.append("down block type \(other): only DownEncoderBlock2D (no attention outside the mid block) is supported")
        }
        if let other = upTypes.first(where: { $0 != "UpDecoderBlock2D" }) {
            reasons.append("up block type \(other): only UpDecoderBlock2D (no attention outside the mid block) is supported")
        }
        let ch = widths.first ?? 0
        if ch <= 0 || widths.contains(where: { $0 <= 0 || $0 % ch != 0 }) {
            reasons.append("block_out_channels \(widths) must be positive multiples of the first entry (ldm's ch·ch_mult)")
        }
        if let act = json["act_fn"] as? String, act != "silu" { reasons.append("act_fn \(act): only silu is supported") }
        if int("norm_num_groups", 32) != 32 { reasons.append("norm_num_groups \(json["norm_num_groups"]!): only 32 is supported") }
        for key in ["use_quant_conv", "use_post_quant_conv", "mid_block_add_attention"] {
            if let flag = json[key] as? Bool, !flag { reasons.append("\(key) false: our AutoencoderKL always has it") }
        }
        var resolution = 32
        if let size = json["sample_size"] {
            if let s = size as? Int {
                resolution = s
            } else if let s = size as? [Int], let first = s.first, s.allSatisfy({ $0 == first }) {
                resolution = first
            } else {
                reasons.append("sample_size \(size): only square sizes are supported")
            }
        }
        var config = AutoencoderConfig()
        config.regularizer = .kl
        config.resolution = resolution
        config.inChannels = int("in_channels", 3)
        config.outChannels = int("out_channels", 3)
        config.ch = ch
        config.chMult = ch > 0 ? widths.map { $0 / ch } : []
        config.numResBlocks = int("layers_per_block", 1)
        config.attnResolutions = []
        config.zChannels = int("latent_channels", 4)
        config.embedDim = config.zChannels
        config.dropout = 0
        if reasons.isEmpty { reasons = config.validationErrors() }
        guard reasons.isEmpty else { throw ConversionError(source: source, reasons) }
        return config
    }

    /// Why `config` has no diffusers AutoencoderKL equivalent (empty if it has one).
    public static func unsupportedReasons(_ config: AutoencoderConfig) -> [String] {
        var reasons: [String] = []
        if config.regularizer != .kl {
            reasons.append("regularizer \(config.regularizer.rawValue): diffusers' AutoencoderKL is the KL autoencoder")
        }
        if config.chMult.first != 1 {
            reasons.append("ch_mult \(config.chMult) must start with 1: diffusers' conv_in feeds the first level at its own width")
        }
        let levelResolutions = (0..<config.chMult.count).map { config.resolution >> $0 }
        let used = config.attnResolutions.filter { levelResolutions.contains($0) }
        if !used.isEmpty {
            reasons.append("attn_resolutions \(used): diffusers' AutoencoderKL has attention only in the mid block")
        }
        if config.embedDim != config.zChannels {
            reasons.append("embed_dim \(config.embedDim) ≠ z_channels \(config.zChannels): diffusers' quant convs keep latent_channels")
        }
        return reasons
    }

    /// diffusers' `config.json` for `config`.
    public static func diffusersConfig(for config: AutoencoderConfig, scalingFactor: Double) throws -> [String: Any] {
        let reasons = unsupportedReasons(config)
        guard reasons.isEmpty else { throw ConversionError(source: "autoencoder config", reasons) }
        let levels = config.chMult.count
        return [
            "_class_name": "AutoencoderKL",
            "_diffusers_version": diffusersVersion,
            "act_fn": "silu",
            "block_out_channels": config.chMult.map { config.ch * $0 },
            "down_block_types": Array(repeating: "DownEncoderBlock2D", count: levels),
            "up_block_types": Array(repeating: "UpDecoderBlock2D", count: levels),
            "in_channels": config.inChannels,
            "out_channels": config.outChannels,
            "latent_channels": config.zChannels,
            "layers_per_block": config.numResBlocks,
            "norm_num_groups": 32,
            "sample_size": config.resolution,
            "scaling_factor": scalingFactor,
            "force_upcast": true,
            "use_quant_conv": true,
            "use_post_quant_conv": true,
            "mid_block_add_attention": true,
        ]
    }

    // MARK: - Names

    /// diffusers' name for an ldm key of an AutoencoderKL with `levels` resolution levels, or
    /// nil for a key diffusers has no place for (attention outside the mid block).
    public static func diffusersKey(forLDMKey key: String, levels: Int) -> String? {
        var parts = key.split(separator: ".").map(String.init)
        guard parts.count >= 2 else { return key }
        let part = parts[0]
        guard part == "encoder" || part == "decoder" else { return key }  // quant_conv, post_quant_conv
        switch parts[1] {
        case "down", "up":
            guard parts.count >= 4, let level = Int(parts[2]) else { return nil }
            let index = parts[1] == "down" ? level : levels - 1 - level
            let blocks = parts[1] == "down" ? "down_blocks" : "up_blocks"
            switch parts[3] {
            case "block":
                guard parts.count >= 6 else { return nil }
                if parts[5] == "nin_shortcut" { parts[5] = "conv_shortcut" }
                return ([part, blocks, String(index), "resnets"] + parts[4...]).joined(separator: ".")
            case "downsample", "upsample":
                let sampler = parts[3] == "downsample" ? "downsamplers" : "upsamplers"
                return ([part, blocks, String(index), sampler, "0"] + parts[4...]).joined(separator: ".")
            default:
                return nil
            }
        case "mid":
            guard parts.count >= 4 else { return nil }
            switch parts[2] {
            case "block_1": return ([part, "mid_block", "resnets", "0"] + parts[3...]).joined(separator: ".")
            case "block_2": return ([part, "mid_block", "resnets", "1"] + parts[3...]).joined(separator: ".")
            case "attn_1":
                let renamed: [String: String] = ["norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v",
                                                 "proj_out": "to_out.0"]
                guard let name = renamed[parts[3]] else { return nil }
                return ([part, "mid_block", "attentions", "0", name] + parts[4...]).joined(separator: ".")
            default: return nil
            }
        case "norm_out":
            return ([part, "conv_norm_out"] + parts[2...]).joined(separator: ".")
        default:
            return key
        }
    }

    /// Older diffusers checkpoints name the attention projections query/key/value/proj_attn.
    static let legacyAttentionNames = [".to_q.": ".query.", ".to_k.": ".key.", ".to_v.": ".value.", ".to_out.0.": ".proj_attn."]

    /// Whether an ldm key is a 1×1 attention projection weight (a Linear weight in diffusers).
    static func isAttentionProjectionWeight(_ ldmKey: String) -> Bool {
        guard ldmKey.hasSuffix(".weight"), ldmKey.contains(".attn") else { return false }
        return [".q.weight", ".k.weight", ".v.weight", ".proj_out.weight"].contains { ldmKey.hasSuffix($0) }
    }

    // MARK: - Weights

    /// Our (ldm-keyed) state dict for `config` from diffusers-keyed tensors. Every problem
    /// (missing, unexpected or misshapen tensors) is reported at once, naming diffusers' keys.
    public static func ldmStateDict(fromDiffusers tensors: [String: Tensor], config: AutoencoderConfig,
                                    source: String) throws -> [String: Tensor] {
        let reasons = unsupportedReasons(config)
        guard reasons.isEmpty else { throw ConversionError(source: source, reasons) }
        var generator = RandomGenerator(seed: 0)
        let template = AutoencoderKL(config, generator: &generator)
        let levels = config.chMult.count
        var result: [String: Tensor] = [:]
        var used = Set<String>()
        var problems: [String] = []
        for (key, target) in template.orderedStateDict() {
            guard let name = diffusersKey(forLDMKey: key, levels: levels) else {
                problems.append("\(key): no diffusers equivalent")
                continue
            }
            var found = tensors[name].map { (name, $0) }
            if found == nil, let (new, old) = legacyAttentionNames.first(where: { name.contains($0.key) }) {
                let legacy = name.replacingOccurrences(of: new, with: old)
                found = tensors[legacy].map { (legacy, $0) }
            }
            guard let (sourceName, tensor) = found else {
                problems.append("\(name): missing (expected \(target.shape), for \(key))")
                continue
            }
            used.insert(sourceName)
            if tensor.shape == target.shape {
                result[key] = tensor
            } else if isAttentionProjectionWeight(key), tensor.count == target.count, tensor.shape.prefix(2) == target.shape.prefix(2) {
                result[key] = tensor.reshaped(target.shape)  // Linear [C, C] → 1×1 conv [C, C, 1, 1]
            } else {
                problems.append("\(sourceName): expected \(target.shape), got \(tensor.shape)")
            }
        }
        let unexpected = tensors.keys.filter { !used.contains($0) }.sorted()
        problems += unexpected.map { "\($0): unexpected (no place for it in an AutoencoderKL with this config)" }
        guard problems.isEmpty else { throw ConversionError(source: source, problems) }
        return result
    }

    /// diffusers-keyed tensors of `model` (attention projections as Linear weights [C, C]).
    public static func diffusersStateDict(from model: AutoencoderKL) throws -> [String: Tensor] {
        let reasons = unsupportedReasons(model.config)
        guard reasons.isEmpty else { throw ConversionError(source: "autoencoder", reasons) }
        var result: [String: Tensor] = [:]
        for (key, tensor) in model.orderedStateDict() {
            guard let name = diffusersKey(forLDMKey: key, levels: model.config.chMult.count) else {
                throw ConversionError(source: "autoencoder", ["\(key): no diffusers equivalent"])
            }
            result[name] = isAttentionProjectionWeight(key) ? tensor.reshaped(Array(tensor.shape.prefix(2))) : tensor
        }
        return result
    }

    // MARK: - Files

    /// The weights file and config of a diffusers AutoencoderKL given as a directory (its own,
    /// or a pipeline's with a `vae/` folder) or a weights file (config beside it unless given).
    public static func locate(_ path: URL, configJSON: URL?) throws -> (weights: URL, config: URL) {
        try DiffusersFiles.locate(path, configJSON: configJSON, pipelineSubfolder: "vae")
    }

    /// An AutoencoderKL from diffusers files, and diffusers' latent scaling factor if given.
    public static func importModel(weights: URL, config: URL) throws -> (model: AutoencoderKL, scalingFactor: Double?) {
        let json: [String: Any]
        do {
            guard let object = try JSONSerialization.jsonObject(with: Data(contentsOf: config)) as? [String: Any] else {
                throw ConversionError(source: config.path, ["not a JSON object"])
            }
            json = object
        } catch let error as ConversionError {
            throw error
        } catch {
            throw ConversionError(source: config.path, ["unreadable JSON: \(error.localizedDescription)"])
        }
        let ourConfig = try autoencoderConfig(fromDiffusersConfig: json, source: config.path)
        let tensors = try SafeTensors.read(weights).allTensors()
        let state = try ldmStateDict(fromDiffusers: tensors, config: ourConfig, source: weights.path)
        var generator = RandomGenerator(seed: 0)
        let model = AutoencoderKL(ourConfig, generator: &generator)
        try model.load(stateDict: state, strict: true)
        return (model, (json["scaling_factor"] as? NSNumber)?.doubleValue)
    }

    /// Writes `model` as a diffusers AutoencoderKL directory (weights + config.json).
    public static func export(_ model: AutoencoderKL, scalingFactor: Double, to directory: URL) throws {
        let config = try diffusersConfig(for: model.config, scalingFactor: scalingFactor)
        let tensors = try diffusersStateDict(from: model)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try SafeTensors.write(tensors, metadata: ["format": "pt"], to: directory.appendingPathComponent(weightsFileName))
        let json = try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys])
        try AtomicFile.write(json + Data("\n".utf8), to: directory.appendingPathComponent(configFileName))
    }
}
