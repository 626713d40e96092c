import Foundation
@testable import Training
import XCTest
import Yams

/// docs/CONFIG.md documents every key of every config the CLI reads, and only those.
final class ConfigReferenceTests: XCTestCase {
    /// The key paths each config type's decoder asks for.
    static func known(_ kind: ShippedConfigs.Kind) -> Set<String> {
        switch kind {
        case .autoencoder: return ConfigKeyRecorder.keyPaths(of: AutoencoderTrainingConfig.self)
        case .ldm: return ConfigKeyRecorder.keyPaths(of: LDMTrainingConfig.self)
        case .classifier: return ConfigKeyRecorder.keyPaths(of: ClassifierTrainingConfig.self)
        }
    }

    /// A shipped file loaded with its kind's type, re-encoded (as the loader's unknown-key check does).
    static func reencoded(_ kind: ShippedConfigs.Kind, _ url: URL) throws -> String {
        switch kind {
        case .autoencoder: return try YAMLEncoder().encode(ConfigLoader.load(AutoencoderTrainingConfig.self, from: url))
        case .ldm: return try YAMLEncoder().encode(ConfigLoader.load(LDMTrainingConfig.self, from: url))
        case .classifier: return try YAMLEncoder().encode(ConfigLoader.load(ClassifierTrainingConfig.self, from: url))
        }
    }

    /// The value of every key a config decoded from an empty file has (the decoders' defaults),
    /// by key path; nil optionals are absent.
    static func defaults(_ kind: ShippedConfigs.Kind) throws -> [String: Any] {
        let yaml: String
        switch kind {
        case .autoencoder: yaml = try YAMLEncoder().encode(ConfigLoader.parse(AutoencoderTrainingConfig.self, yaml: "{}"))
        case .ldm: yaml = try YAMLEncoder().encode(ConfigLoader.parse(LDMTrainingConfig.self, yaml: "{}"))
        case .classifier: yaml = try YAMLEncoder().encode(ConfigLoader.parse(ClassifierTrainingConfig.self, yaml: "{}"))
        }
        func walk(_ node: Any?, _ prefix: String, into values: inout [String: Any]) {
            guard let mapping = node as? [String: Any] else {
                if let node, !prefix.isEmpty { values[prefix] = node }
                return
            }
            for (key, value) in mapping { walk(value, prefix.isEmpty ? key : prefix + "." + key, into: &values) }
        }
        var values: [String: Any] = [:]
        walk(try Yams.load(yaml: yaml), "", into: &values)
        return values
    }

    /// Every mapping key of a YAML text, as dotted paths (lists are values).
    static func keyPaths(yaml: String) throws -> Set<String> {
        func walk(_ node: Any?, _ prefix: String, into paths: inout Set<String>) {
            guard let mapping = node as? [String: Any] else { return }
            for (key, value) in mapping {
                let path = prefix.isEmpty ? key : prefix + "." + key
                paths.insert(path)
                walk(value, path, into: &paths)
            }
        }
        var paths: Set<String> = []
        walk(try Yams.load(yaml: yaml), "", into: &paths)
        return paths
    }

    /// The keys each kind must document: what its type knows, what every shipped file of the
    /// kind sets, and what its decoded value re-encodes to.
    func requiredKeys() throws -> [ShippedConfigs.Kind: Set<String>] {
        var required: [ShippedConfigs.Kind: Set<String>] = [:]
        for kind in ShippedConfigs.Kind.allCases {
            let known = Self.known(kind)
            var keys = known
            let names = try ShippedConfigs.names(kind)
            XCTAssertFalse(names.isEmpty, kind.rawValue)
            for name in names {
                let url = ShippedConfigs.directory.appendingPathComponent(name)
                let fromFile = try Self.keyPaths(yaml: String(contentsOf: url, encoding: .utf8))
                let fromValue = try Self.keyPaths(yaml: Self.reencoded(kind, url))
                // The loader refuses unknown keys, so both are within what the decoder asks for.
                XCTAssertEqual(fromFile.union(fromValue).subtracting(known), [], "\(name): keys the key recorder missed")
                keys.formUnion(fromFile.union(fromValue))
            }
            required[kind] = keys
        }
        return required
    }

    func testTheKeyRecorderFindsOptionalKeysThatNoValueEncodes() {
        let ldm = Self.known(.ldm)
        for path in ["model.unet.context_dim", "model.conditioning.spatial.box_fraction", "model.conditioning.text.dim_head",
                     "data.images.captions.key", "evaluation.classifier", "trainer.lr_schedule.min_factor"] {
            XCTAssertTrue(ldm.contains(path), path)
        }
        XCTAssertTrue(Self.known(.autoencoder).contains("model.loss.disc_ndf"))
        XCTAssertFalse(Self.known(.classifier).contains("model.loss"))
    }

    func testEveryConfigKeyIsDocumented() throws {
        let reference = try ConfigReference.load()
        XCTAssertEqual(reference.problems, [])
        for (kind, keys) in try requiredKeys().sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            let missing = reference.undocumented(keys, kind: kind)
            XCTAssertEqual(missing, [], "docs/CONFIG.md lacks \(missing.count) key(s) of `ldm \(kind.command)` configs")
        }
    }

    func testEveryDocumentedKeyIsOneAConfigKnows() throws {
        let reference = try ConfigReference.load()
        XCTAssertGreaterThan(reference.sections.count, 10)
        XCTAssertEqual(reference.unknown(known: Self.known), [], "docs/CONFIG.md documents keys no config type has")
    }

    func testDocumentedDefaultsAreTheDecodersDefaults() throws {
        let reference = try ConfigReference.load()
        for kind in ShippedConfigs.Kind.allCases {
            let defaults = try Self.defaults(kind)
            XCTAssertGreaterThan(defaults.count, 20, kind.rawValue)
            XCTAssertEqual(reference.wrongDefaults(defaults, kind: kind), [], "`ldm \(kind.command)` configs")
        }
    }

    /// The checks fail, naming the key, when a row is removed, a key renamed or a default changed.
    func testARemovedOrRenamedRowIsNamed() throws {
        let text = try String(contentsOf: ConfigReference.file, encoding: .utf8)
        var lines = text.components(separatedBy: "\n")
        let row = try XCTUnwrap(lines.firstIndex { $0.hasPrefix("| `disc_ndf` |") })
        lines.remove(at: row)
        let removed = ConfigReference(markdown: lines.joined(separator: "\n"))
        let missing = removed.undocumented(try requiredKeys()[.autoencoder]!, kind: .autoencoder)
        XCTAssertEqual(missing, ["autoencoder: model.loss.disc_ndf (no `disc_ndf` row under `model.loss`)"])

        let renamed = ConfigReference(markdown: text.replacingOccurrences(of: "| `ucg_rate` |", with: "| `ucg_ratio` |"))
        XCTAssertEqual(renamed.unknown(known: Self.known), ["model.conditioning.ucg_ratio"])
        XCTAssertTrue(renamed.undocumented(try requiredKeys()[.ldm]!, kind: .ldm).contains {
            $0.contains("model.conditioning.ucg_rate")
        })

        let changed = ConfigReference(markdown: text.replacingOccurrences(of: "| `timesteps` | int | `1000` |", with: "| `timesteps` | int | `100` |"))
        XCTAssertEqual(changed.wrongDefaults(try Self.defaults(.ldm), kind: .ldm),
                       ["ldm: model.schedule.timesteps is documented as 100 but defaults to 1000"])
    }
}
