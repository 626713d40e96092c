import Checkpoint
import Foundation
import NN
import Tensor

/// Conversion between our UNetModel (CompVis ldm key layout, `UNetConfig`) and diffusers'
/// UNet2DConditionModel (`diffusion_pytorch_model.safetensors` + `config.json`).
///
/// The two describe the same network with different names (the standard conversion's table):
/// - `time_embed.0/2` ↔ `time_embedding.linear_1/2`, `label_emb` ↔ `class_embedding`,
///   `input_blocks.0.0` ↔ `conv_in`, `out.0/2` ↔ `conv_norm_out`/`conv_out`;
/// - `input_blocks.n` (n ≥ 1) holds level ℓ = (n−1) / (R+1), slot j = (n−1) mod (R+1) with R =
///   num_res_blocks: slots j < R are `down_blocks.ℓ.resnets.j` (`.0`) and `.attentions.j` (`.1`),
///   slot R is the level's downsampler `.0.op` ↔ `down_blocks.ℓ.downsamplers.0.conv`;
/// - `output_blocks.n` is up block k = n / (R+1) (level L−1−k; diffusers numbers up blocks in the
///   order they run, as ldm does), slot j = n mod (R+1): `.0` ↔ `up_blocks.k.resnets.j`, `.1` ↔
///   `.attentions.j` and the last slot's upsampler `.1` or `.2` `.conv` ↔ `up_blocks.k.upsamplers.0.conv`;
/// - `middle_block.0/1/2` ↔ `mid_block.resnets.0/attentions.0/resnets.1`;
/// - inside a ResBlock `in_layers.0/2`, `emb_layers.1`, `out_layers.0/3`, `skip_connection` ↔
///   `norm1/conv1`, `time_emb_proj`, `norm2/conv2`, `conv_shortcut`; inside a SpatialTransformer
///   the names (norm, proj_in, transformer_blocks.k.…, proj_out) and shapes are the same.
///
/// diffusers' config names need care: in UNet2DConditionModel `attention_head_dim` is the number
/// of heads per level (diffusers' own `num_attention_heads = num_attention_heads or
/// attention_head_dim`), each head being `channels / heads` wide. What one side cannot express
/// is refused with the reason (see `unsupportedReasons` and `unetConfig(fromDiffusersConfig:)`).
///
/// A model without cross-attention context (context_dim nil: each transformer's attn2 attends to
/// its own tokens) is written with `cross_attention_dim` = `block_out_channels` (per level), which
/// diffusers runs the same way when called with `encoder_hidden_states=None`; such a list is read
/// back as context_dim nil.
public enum DiffusersUNet {
    public static let weightsFileName = DiffusersVAE.weightsFileName
    public static let configFileName = "config.json"
    /// The diffusers version whose UNet2DConditionModel format this writes (and was tested against).
    public static let diffusersVersion = DiffusersVAE.diffusersVersion
    /// Metadata key of a UNet-only file (`ldm import-unet`): the `UNetConfig` as JSON.
    public static let configMetadataKey = "ldm.unet_config"
    /// Metadata key under which an imported model keeps diffusers' sample_size.
    public static let sampleSizeMetadataKey = "diffusers.sample_size"

    public typealias ConversionError = DiffusersVAE.ConversionError

    // MARK: - Layout and names

    /// What the key mapping's index arithmetic needs to know about a UNet.
    public struct Layout: Equatable, Sendable {
        public let levels: Int
        public let resBlocks: Int
        /// Whether each level's res blocks carry a SpatialTransformer (down and up alike).
        public let attention: [Bool]

        public init(levels: Int, resBlocks: Int, attention: [Bool]) {
            self.levels = levels
            self.resBlocks = resBlocks
            self.attention = attention
        }

        public init(_ config: UNetConfig) {
            self.init(levels: config.channelMult.count, resBlocks: config.numResBlocks,
                      attention: (0..<config.channelMult.count).map { config.attentionResolutions.contains(1 << $0) })
        }
    }

    typealias Rename = (ldm: String, diffusers: String)

    /// Names inside a ResBlock (ldm prefix ↔ diffusers prefix).
    static let resnetRules: [Rename] = [
        ("in_layers.0.", "norm1."), ("in_layers.2.", "conv1."), ("emb_layers.1.", "time_emb_proj."),
        ("out_layers.0.", "norm2."), ("out_layers.3.", "conv2."), ("skip_connection.", "conv_shortcut."),
    ]

    /// One block of the network on both sides: the key prefixes and the renames inside it
    /// (empty: the inner names are the same).
    struct Place {
        let ldm: String
        let diffusers: String
        let inner: [Rename]
    }

    /// Every block of a UNet with `layout`, in the standard conversion's order: the fixed
    /// renames, then the down, middle and up blocks placed by index arithmetic.
    static func places(_ layout: Layout) -> [Place] {
        let r = layout.resBlocks, levels = layout.levels
        var places: [Place] = [
            Place(ldm: "time_embed.0.", diffusers: "time_embedding.linear_1.", inner: []),
            Place(ldm: "time_embed.2.", diffusers: "time_embedding.linear_2.", inner: []),
            Place(ldm: "label_emb.", diffusers: "class_embedding.", inner: []),
            Place(ldm: "input_blocks.0.0.", diffusers: "conv_in.", inner: []),
        ]
        for level in 0..<levels {
            for j in 0..<r {
                let n = 1 + level * (r + 1) + j
                places.append(Place(ldm: "input_blocks.\(n).0.", diffusers: "down_blocks.\(level).resnets.\(j).", inner: resnetRules))
                if layout.attention[level] {
                    places.append(Place(ldm: "input_blocks.\(n).1.", diffusers: "down_blocks.\(level).attentions.\(j).", inner: []))
                }
            }
            if level < levels - 1 {
                places.append(Place(ldm: "input_blocks.\(1 + level * (r + 1) + r).0.op.",
                                    diffusers: "down_blocks.\(level).downsamplers.0.conv.", inner: []))
            }
        }
        places += [
            Place(ldm: "middle_block.0.", diffusers: "mid_block.resnets.0.", inner: resnetRules),
            Place(ldm: "middle_block.1.", diffusers: "mid_block.attentions.0.", inner: []),
            Place(ldm: "middle_block.2.", diffusers: "mid_block.resnets.1.", inner: resnetRules),
        ]
        for k in 0..<levels {
            let attention = layout.attention[levels - 1 - k]
            for j in 0...r {
                let n = k * (r + 1) + j
                places.append(Place(ldm: "output_blocks.\(n).0.", diffusers: "up_blocks.\(k).resnets.\(j).", inner: resnetRules))
                if attention {
                    places.append(Place(ldm: "output_blocks.\(n).1.", diffusers: "up_blocks.\(k).attentions.\(j).", inner: []))
                }
            }
            if k < levels - 1 {
                places.append(Place(ldm: "output_blocks.\(k * (r + 1) + r).\(attention ? 2 : 1).conv.",
                                    diffusers: "up_blocks.\(k).upsamplers.0.conv.", inner: []))
            }
        }
        places += [
            Place(ldm: "out.0.", diffusers: "conv_norm_out.", inner: []),
            Place(ldm: "out.2.", diffusers: "conv_out.", inner: []),
        ]
        return places
    }

    /// `key` moved from one naming to the other through `places` (nil: no place for it).
    static func translate(_ key: String, places: [Place], toDiffusers: Bool) -> String? {
        for place in places {
            let (from, to) = toDiffusers ? (place.ldm, place.diffusers) : (place.diffusers, place.ldm)
            guard key.hasPrefix(from) else { continue }
            let rest = String(key.dropFirst(from.count))
            if place.inner.isEmpty { return to + rest }
            for rule in place.inner {
                let (innerFrom, innerTo) = toDiffusers ? (rule.ldm, rule.diffusers) : (rule.diffusers, rule.ldm)
                if rest.hasPrefix(innerFrom) { return to + innerTo + String(rest.dropFirst(innerFrom.count)) }
            }
            return nil
        }
        return nil
    }

    /// diffusers' name for an ldm key of a UNet with `layout` (nil: diffusers has no place for it).
    public static func diffusersKey(forLDMKey key: String, layout: Layout) -> String? {
        translate(key, places: places(layout), toDiffusers: true)
    }

    /// Our (ldm) name for a diffusers key of a UNet with `layout` (nil: ours has no place for it).
    public static func ldmKey(forDiffusersKey key: String, layout: Layout) -> String? {
        translate(key, places: places(layout), toDiffusers: false)
    }

    // MARK: - Configuration

    /// diffusers UNet2DConditionModel settings that have one value here: the value written (and
    /// diffusers' default, so a missing key is fine), and why nothing else is accepted.
    static let fixedSettings: [(key: String, value: Any, why: String)] = [
        ("mid_block_type", "UNetMidBlock2DCrossAttn", "ldm's middle_block is always ResBlock, SpatialTransformer, ResBlock"),
        ("center_input_sample", false, "ldm feeds z_t unchanged"),
        ("flip_sin_to_cos", true, "ldm's timestep embedding is [cos | sin]"),
        ("freq_shift", 0, "ldm's frequencies are exp(−ln(10⁴)·i/half)"),
        ("time_embedding_type", "positional", "ldm's timestep embedding is sinusoidal"),
        ("time_embedding_act_fn", NSNull(), "ldm's time embedding goes to the blocks without an extra activation"),
        ("timestep_post_act", NSNull(), "ldm's time MLP is Linear, SiLU, Linear"),
        ("time_cond_proj_dim", NSNull(), "ldm has no timestep-condition projection"),
        ("act_fn", "silu", "ldm's blocks use SiLU"),
        ("norm_num_groups", 32, "ldm's GroupNorm32"),
        ("norm_eps", 1e-5, "ldm's ResBlock and output norms use eps 1e-5"),
        ("downsample_padding", 1, "ldm's downsampler is conv3 stride 2 padding 1"),
        ("mid_block_scale_factor", 1, "ldm does not rescale residual sums"),
        ("resnet_out_scale_factor", 1, "ldm does not rescale residual sums"),
        ("resnet_skip_time_act", false, "ldm applies SiLU before every ResBlock's emb_layers"),
        ("conv_in_kernel", 3, "ldm's input conv is 3×3"),
        ("conv_out_kernel", 3, "ldm's output conv is 3×3"),
        ("dual_cross_attention", false, "ldm has one transformer per attention block"),
        ("use_linear_projection", false, "ldm's proj_in/proj_out are 1×1 convolutions"),
        ("class_embed_type", NSNull(), "ldm's label_emb is a plain embedding table (num_class_embeds)"),
        ("addition_embed_type", NSNull(), "ldm has no added text/time embeddings"),
        ("encoder_hid_dim", NSNull(), "ldm has no encoder_hid_proj"),
        ("encoder_hid_dim_type", NSNull(), "ldm has no encoder_hid_proj"),
        ("reverse_transformer_layers_per_block", NSNull(), "ldm's transformer depth is the same in every block"),
        ("attention_type", "default", "ldm's transformers have no gated (GLIGEN) attention"),
        ("class_embeddings_concat", false, "ldm adds the label embedding to the time embedding"),
        ("cross_attention_norm", NSNull(), "ldm does not normalise the context inside attention"),
    ]

    /// Settings written with diffusers' defaults that do not change the network here.
    static let inertSettings: [(key: String, value: Any)] = [
        ("upcast_attention", false), ("addition_time_embed_dim", NSNull()),
        ("projection_class_embeddings_input_dim", NSNull()), ("addition_embed_type_num_heads", 64),
        ("num_attention_heads", NSNull()), ("time_embedding_dim", NSNull()),
        ("mid_block_only_cross_attention", NSNull()), ("only_cross_attention", false),
    ]

    /// JSON values compared as diffusers means them (1 and 1.0 alike; null only equals null).
    static func sameJSON(_ a: Any, _ b: Any) -> Bool {
        switch (a, b) {
        case (is NSNull, is NSNull): return true
        case (is NSNull, _), (_, is NSNull): return false
        case let (x as String, y as String): return x == y
        case let (x as [Any], y as [Any]): return x.count == y.count && zip(x, y).allSatisfy { sameJSON($0, $1) }
        default:
            guard let x = scalar(a), let y = scalar(b) else { return false }
            return x == y
        }
    }

    static func scalar(_ value: Any) -> Double? {
        if value is String || value is NSNull || value is [Any] { return nil }
        if let n = value as? NSNumber { return n.doubleValue }
        if let b = value as? Bool { return b ? 1 : 0 }
        if let i = value as? Int { return Double(i) }
        return value as? Double
    }

    /// A JSON value as written in config.json; a number where `like` is a Bool reads as true/false.
    static func render(_ value: Any, like: Any? = nil) -> String {
        if let like, type(of: like) == Bool.self, let x = scalar(value), x == 0 || x == 1 { return x == 1 ? "true" : "false" }
        if value is NSNull { return "null" }
        if let s = value as? String { return "\"\(s)\"" }
        if let list = value as? [Any] { return "[" + list.map { render($0) }.joined(separator: ", ") + "]" }
        return scalar(value).map { $0 == $0.rounded() && abs($0) < 1e15 ? String(Int($0)) : String($0) } ?? "\(value)"
    }

    /// Our configuration for a diffusers UNet2DConditionModel `config.json` (missing keys take
    /// diffusers' defaults). Every reason it cannot be expressed is reported at once.
    public static func unetConfig(fromDiffusersConfig json: [String: Any], source: String) throws -> UNetConfig {
        var reasons: [String] = []
        if let name = json["_class_name"] as? String, name != "UNet2DConditionModel" {
            reasons.append("_class_name is \(name); only UNet2DConditionModel is supported")
        }
        for setting in fixedSettings {
            if let value = json[setting.key], !sameJSON(value, setting.value) {
                reasons.append("\(setting.key) \(render(value, like: setting.value)): only \(render(setting.value, like: setting.value)) is supported (\(setting.why))")
            }
        }
        func int(_ key: String, _ fallback: Int) -> Int {
            guard let value = json[key], !(value is NSNull) else { return fallback }
            if let i = value as? Int { return i }
            reasons.append("\(key) must be an integer, got \(render(value))")
            return fallback
        }
        /// An integer or a list of one integer per level.
        func perLevel(_ key: String, _ fallback: Any, count: Int) -> [Int]? {
            let value = json[key].flatMap { $0 is NSNull ? nil : $0 } ?? fallback
            if let i = value as? Int { return Array(repeating: i, count: count) }
            if let list = value as? [Int], list.count == count { return list }
            reasons.append("\(key) \(render(value)): expected an integer or a list of \(count) integers (one per level)")
            return nil
        }
        /// A value that ours keeps the same at every level.
        func uniform(_ key: String, _ fallback: Int, count: Int, what: String) -> Int {
            guard let values = perLevel(key, fallback, count: count) else { return fallback }
            if Set(values).count > 1 { reasons.append("\(key) \(values): ldm's \(what) is the same at every level") }
            return values.first ?? fallback
        }

        let widths = (json["block_out_channels"] as? [Int]) ?? [320, 640, 1280, 1280]
        let levels = widths.count
        let downTypes = (json["down_block_types"] as? [String])
            ?? ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"]
        let upTypes = (json["up_block_types"] as? [String])
            ?? ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]
        guard levels > 0, downTypes.count == levels, upTypes.count == levels else {
            reasons.append("down_block_types (\(downTypes.count)), up_block_types (\(upTypes.count)) and block_out_channels "
                           + "(\(levels)) must have one entry per level")
            throw ConversionError(source: source, reasons)
        }
        let downKinds: [String: Bool] = ["CrossAttnDownBlock2D": true, "DownBlock2D": false]
        let upKinds: [String: Bool] = ["CrossAttnUpBlock2D": true, "UpBlock2D": false]
        var attention = [Bool](repeating: false, count: levels)
        for (level, type) in downTypes.enumerated() {
            if let a = downKinds[type] { attention[level] = a } else {
                reasons.append("down block type \(type): only CrossAttnDownBlock2D and DownBlock2D are supported")
            }
        }
        for (k, type) in upTypes.enumerated() {
            let level = levels - 1 - k
            guard let a = upKinds[type] else {
                reasons.append("up block type \(type): only CrossAttnUpBlock2D and UpBlock2D are supported")
                continue
            }
            if downKinds[downTypes[level]] != nil, a != attention[level] {
                reasons.append("level \(level) has attention in \(a ? "up_blocks.\(k) but not in down_blocks.\(level)" : "down_blocks.\(level) but not in up_blocks.\(k)")"
                               + ": ldm's attention_resolutions put it in both or neither")
            }
        }
        if let value = json["only_cross_attention"] {
            let flags = (value as? [Bool]) ?? (value as? Bool).map { [$0] }
            if flags == nil || flags!.contains(true) {
                reasons.append("only_cross_attention \(render(value, like: false)): only false is supported (ldm's transformers have self-attention)")
            }
        }
        if let value = json["mid_block_only_cross_attention"], !(value is NSNull), !sameJSON(value, false) {
            reasons.append("mid_block_only_cross_attention \(render(value, like: false)): only null/false is supported (ldm's transformers have self-attention)")
        }
        if let value = json["time_embedding_dim"], !(value is NSNull), let first = widths.first, !sameJSON(value, 4 * first) {
            reasons.append("time_embedding_dim \(render(value)): ldm's time embedding is 4 × block_out_channels[0] = \(4 * first) wide")
        }
        let resBlocks = uniform("layers_per_block", 2, count: levels, what: "num_res_blocks")
        let depth: Int
        if let value = json["transformer_layers_per_block"], value is [[Any]] {
            reasons.append("transformer_layers_per_block \(render(value)): per-block depths are not supported (ldm's transformer_depth is one number)")
            depth = 1
        } else {
            depth = uniform("transformer_layers_per_block", 1, count: levels, what: "transformer_depth")
        }
        var scaleShift = false
        switch json["resnet_time_scale_shift"] as? String ?? "default" {
        case "default": break
        case "scale_shift": scaleShift = true
        case let other: reasons.append("resnet_time_scale_shift \(other): only default and scale_shift are supported (ldm's use_scale_shift_norm)")
        }
        var numClasses: Int?
        if let value = json["num_class_embeds"], !(value is NSNull) {
            if let n = value as? Int, n > 0 { numClasses = n } else { reasons.append("num_class_embeds \(render(value)) must be a positive integer") }
        }
        let dropout = json["dropout"].flatMap(scalar) ?? 0

        // Widths: ldm's model_channels × channel_mult, level 0 at model_channels.
        let mc = widths[0]
        if mc <= 0 || widths.contains(where: { $0 <= 0 || $0 % mc != 0 }) {
            reasons.append("block_out_channels \(widths) must be positive multiples of the first entry (ldm's model_channels × channel_mult)")
        }
        // Which blocks attend: the attention levels and the middle block (at the last level's width).
        let attending = Array(Set((0..<levels).filter { attention[$0] } + [levels - 1])).sorted()

        // Heads: diffusers' attention_head_dim is the head COUNT per level (unless num_attention_heads is given).
        var numHeads = -1, numHeadChannels = -1
        let headsKey = json["num_attention_heads"].map { $0 is NSNull } == false ? "num_attention_heads" : "attention_head_dim"
        if let heads = perLevel(headsKey, 8, count: levels), widths.allSatisfy({ $0 > 0 }) {
            var ok = true
            for level in attending where heads[level] < 1 || widths[level] % heads[level] != 0 {
                reasons.append("\(headsKey) \(heads): attention at level \(level) over \(widths[level]) channels cannot be split into \(heads[level]) heads")
                ok = false
            }
            if ok {
                let counts = Set(attending.map { heads[$0] })
                let dims = Set(attending.map { widths[$0] / heads[$0] })
                if counts.count == 1 {
                    numHeads = counts.first!
                } else if dims.count == 1 {
                    numHeadChannels = dims.first!
                } else {
                    let desc = attending.map { "level \($0): \(heads[$0]) heads of \(widths[$0] / heads[$0])" }.joined(separator: ", ")
                    reasons.append("\(headsKey) \(heads) gives \(desc): ldm has either one head count (num_heads) or one head width (num_head_channels) for every attention block")
                }
            }
        }

        // Context: one width for every transformer, or (block_out_channels per level) none.
        var contextDim: Int?
        let context = json["cross_attention_dim"].flatMap { $0 is NSNull ? nil : $0 } ?? 1280
        if let d = context as? Int {
            contextDim = d
        } else if let list = context as? [Int], list.count == levels {
            if list == widths {
                contextDim = nil  // each transformer attends to itself (encoder_hidden_states=None)
            } else if Set(attending.map { list[$0] }).count == 1 {
                contextDim = list[attending[0]]
            } else {
                reasons.append("cross_attention_dim \(list): ldm's transformers share one context_dim")
            }
        } else {
            reasons.append("cross_attention_dim \(render(context)): expected an integer or a list of \(levels) integers")
        }

        var config = UNetConfig()
        config.inChannels = int("in_channels", 4)
        config.outChannels = int("out_channels", 4)
        config.modelChannels = mc
        config.channelMult = mc > 0 ? widths.map { $0 / mc } : []
        config.numResBlocks = resBlocks
        config.attentionResolutions = (0..<levels).filter { attention[$0] }.map { 1 << $0 }
        config.dropout = Float(dropout)
        config.numClasses = numClasses
        config.numHeads = numHeads
        config.numHeadChannels = numHeadChannels
        config.useScaleShiftNorm = scaleShift
        config.useNewAttentionOrder = false
        config.useSpatialTransformer = true
        config.transformerDepth = depth
        config.contextDim = contextDim
        config.legacy = false
        config.convResample = true
        if reasons.isEmpty { reasons = config.validationErrors(prefix: "unet") }
        guard reasons.isEmpty else { throw ConversionError(source: source, reasons) }
        return config
    }

    /// diffusers' sample_size in a config.json (nil: absent, null or not square).
    public static func sampleSize(inDiffusersConfig json: [String: Any]) -> Int? {
        if let s = json["sample_size"] as? Int { return s }
        if let s = json["sample_size"] as? [Int], let first = s.first, s.allSatisfy({ $0 == first }) { return first }
        return nil
    }

    /// Why `config` has no diffusers UNet2DConditionModel equivalent (empty if it has one).
    public static func unsupportedReasons(_ config: UNetConfig) -> [String] {
        var reasons = config.validationErrors(prefix: "unet")
        guard reasons.isEmpty else { return reasons }
        if !config.useSpatialTransformer {
            reasons.append("use_spatial_transformer false: ldm's plain AttentionBlocks (qkv convolutions, in the middle block "
                           + "at least) have no place in diffusers' UNet2DConditionModel, whose attention is Transformer2DModel")
        }
        if config.channelMult.first != 1 {
            reasons.append("channel_mult \(config.channelMult) must start with 1: diffusers' conv_in, time embedding and "
                           + "conv_norm_out work at block_out_channels[0], ldm's at model_channels")
        }
        if !config.convResample {
            reasons.append("conv_resample false: diffusers' down- and upsamplers are convolutions")
        }
        return reasons
    }

    /// Heads per level as diffusers' attention_head_dim counts them (levels without attention
    /// get what the rule gives there; diffusers ignores them).
    static func headsPerLevel(_ config: UNetConfig) -> [Int] {
        config.channelMult.map { max(config.heads(channels: $0 * config.modelChannels).heads, 1) }
    }

    /// diffusers' `config.json` for `config` (every key diffusers writes, with its defaults where
    /// they do not matter here).
    public static func diffusersConfig(for config: UNetConfig, sampleSize: Int?) throws -> [String: Any] {
        let reasons = unsupportedReasons(config)
        guard reasons.isEmpty else { throw ConversionError(source: "unet config", reasons) }
        let layout = Layout(config)
        let widths = config.channelMult.map { $0 * config.modelChannels }
        let heads = headsPerLevel(config)
        var json: [String: Any] = [
            "_class_name": "UNet2DConditionModel",
            "_diffusers_version": diffusersVersion,
            "sample_size": sampleSize.map { $0 as Any } ?? NSNull(),
            "in_channels": config.inChannels,
            "out_channels": config.outChannels,
            "block_out_channels": widths,
            "layers_per_block": config.numResBlocks,
            "down_block_types": layout.attention.map { $0 ? "CrossAttnDownBlock2D" : "DownBlock2D" },
            "up_block_types": layout.attention.reversed().map { $0 ? "CrossAttnUpBlock2D" : "UpBlock2D" },
            "attention_head_dim": Set(heads).count == 1 ? heads[0] as Any : heads as Any,
            "cross_attention_dim": config.contextDim.map { $0 as Any } ?? widths,
            "transformer_layers_per_block": config.transformerDepth,
            "num_class_embeds": config.numClasses.map { $0 as Any } ?? NSNull(),
            "resnet_time_scale_shift": config.useScaleShiftNorm ? "scale_shift" : "default",
            "dropout": Double(config.dropout),
        ]
        for setting in fixedSettings { json[setting.key] = setting.value }
        for setting in inertSettings { json[setting.key] = setting.value }
        return json
    }

    // MARK: - Weights

    /// Our (ldm-keyed) state dict for a UNet whose tensors are `template` from diffusers-keyed
    /// tensors. Every problem (missing, unexpected or misshapen tensors) is reported at once,
    /// naming diffusers' keys.
    static func ldmStateDict(fromDiffusers tensors: [String: Tensor], template: [(String, [Int])], layout: Layout,
                             source: String) throws -> [String: Tensor] {
        let places = places(layout)
        var result: [String: Tensor] = [:]
        var used = Set<String>()
        var problems: [String] = []
        for (key, shape) in template {
            guard let name = translate(key, places: places, toDiffusers: true) else {
                problems.append("\(key): no diffusers equivalent")
                continue
            }
            guard let tensor = tensors[name] else {
                problems.append("\(name): missing (expected \(shape), for \(key))")
                continue
            }
            used.insert(name)
            if tensor.shape == shape { result[key] = tensor } else { problems.append("\(name): expected \(shape), got \(tensor.shape)") }
        }
        let unexpected = tensors.keys.filter { !used.contains($0) }.sorted()
        problems += unexpected.map { "\($0): unexpected (no place for it in a UNet with this config)" }
        guard problems.isEmpty else { throw ConversionError(source: source, problems) }
        return result
    }

    /// Our (ldm-keyed) state dict for `config` from diffusers-keyed tensors.
    public static func ldmStateDict(fromDiffusers tensors: [String: Tensor], config: UNetConfig,
                                    source: String) throws -> [String: Tensor] {
        let reasons = unsupportedReasons(config)
        guard reasons.isEmpty else { throw ConversionError(source: source, reasons) }
        var generator = RandomGenerator(seed: 0)
        let template = UNetModel(config, generator: &generator).orderedStateDict().map { ($0.0, $0.1.shape) }
        return try ldmStateDict(fromDiffusers: tensors, template: template, layout: Layout(config), source: source)
    }

    /// diffusers-keyed tensors of `model` (the same tensors, renamed).
    public static func diffusersStateDict(from model: UNetModel) throws -> [String: Tensor] {
        let reasons = unsupportedReasons(model.config)
        guard reasons.isEmpty else { throw ConversionError(source: "unet", reasons) }
        let places = places(Layout(model.config))
        var result: [String: Tensor] = [:]
        for (key, tensor) in model.orderedStateDict() {
            guard let name = translate(key, places: places, toDiffusers: true) else {
                throw ConversionError(source: "unet", ["\(key): no diffusers equivalent"])
            }
            precondition(result[name] == nil, "two ldm keys map to diffusers' \(name)")
            result[name] = tensor
        }
        return result
    }

    // MARK: - Files

    /// The weights file and config of a diffusers UNet2DConditionModel given as a directory (its
    /// own, or a pipeline's with a `unet/` folder) or a weights file (config beside it unless given).
    public static func locate(_ path: URL, configJSON: URL?) throws -> (weights: URL, config: URL) {
        try DiffusersFiles.locate(path, configJSON: configJSON, pipelineSubfolder: "unet")
    }

    static func readJSON(_ url: URL) throws -> [String: Any] {
        do {
            guard let object = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any] else {
                throw ConversionError(source: url.path, ["not a JSON object"])
            }
            return object
        } catch let error as ConversionError {
            throw error
        } catch {
            throw ConversionError(source: url.path, ["unreadable JSON: \(error.localizedDescription)"])
        }
    }

    /// A UNet from diffusers files, and diffusers' sample_size if given.
    public static func importModel(weights: URL, config: URL) throws -> (model: UNetModel, sampleSize: Int?) {
        let json = try readJSON(config)
        let ourConfig = try unetConfig(fromDiffusersConfig: json, source: config.path)
        let tensors = try SafeTensors.read(weights).allTensors()
        var generator = RandomGenerator(seed: 0)
        let model = UNetModel(ourConfig, generator: &generator)
        let state = try ldmStateDict(fromDiffusers: tensors, template: model.orderedStateDict().map { ($0.0, $0.1.shape) },
                                     layout: Layout(ourConfig), source: weights.path)
        try model.load(stateDict: state, strict: true)
        return (model, sampleSize(inDiffusersConfig: json))
    }

    /// Writes `model` as a diffusers UNet2DConditionModel directory (weights + config.json).
    public static func export(_ model: UNetModel, sampleSize: Int?, to directory: URL) throws {
        let config = try diffusersConfig(for: model.config, sampleSize: sampleSize)
        let tensors = try diffusersStateDict(from: model)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try SafeTensors.write(tensors, metadata: ["format": "pt"], to: directory.appendingPathComponent(weightsFileName))
        let json = try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys])
        try AtomicFile.write(json + Data("\n".utf8), to: directory.appendingPathComponent(configFileName))
    }

    // MARK: - UNet-only files (ldm keys)

    /// Writes a UNet alone: its ldm-keyed weights and its config under `ldm.unet_config`.
    public static func save(_ model: UNetModel, to url: URL, metadata: [String: String] = [:]) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = String(decoding: try encoder.encode(model.config), as: UTF8.self)
        try SafeTensors.write(model.stateDict(), metadata: metadata.merging([configMetadataKey: json]) { $1 }, to: url)
    }

    /// Rebuilds a UNet from a file written by `save` (strict: every key, every shape).
    public static func loadUNet(from url: URL) throws -> (UNetModel, metadata: [String: String]) {
        let file = try SafeTensors.read(url)
        guard let json = file.metadata[configMetadataKey] else {
            throw CheckpointLoadError(path: url.path, "no \(configMetadataKey) metadata: not a UNet written by ldm import-unet")
        }
        let config: UNetConfig
        do { config = try JSONDecoder().decode(UNetConfig.self, from: Data(json.utf8)) } catch {
            throw CheckpointLoadError(path: url.path, "\(configMetadataKey) is not a valid UNet config: \(error)")
        }
        let problems = config.validationErrors(prefix: "unet")
        guard problems.isEmpty else { throw CheckpointLoadError(path: url.path, "invalid config: " + problems.joined(separator: "; ")) }
        var generator = RandomGenerator(seed: 0)
        let model = UNetModel(config, generator: &generator)
        do { try model.load(stateDict: try file.allTensors(), strict: true) } catch {
            throw CheckpointLoadError(path: url.path, "\(error)")
        }
        return (model, file.metadata)
    }

    /// The UNet of a latent diffusion model file (`ldm train-ldm`) or of a UNet-only file
    /// (`ldm import-unet`), with the file's metadata.
    public static func loadAnyUNet(from url: URL) throws -> (UNetModel, metadata: [String: String], latentDiffusion: LatentDiffusion?) {
        let metadata = try SafeTensors.read(url).metadata
        if metadata[LatentDiffusion.configMetadataKey] != nil {
            let (model, metadata) = try LatentDiffusion.load(from: url)
            return (model.unet, metadata, model)
        }
        if metadata[configMetadataKey] != nil {
            let (unet, metadata) = try loadUNet(from: url)
            return (unet, metadata, nil)
        }
        throw ConversionError(source: url.path, ["neither \(LatentDiffusion.configMetadataKey) nor \(configMetadataKey) metadata: "
                                                 + "not a model written by ldm train-ldm or ldm import-unet"])
    }
}
