import Foundation
import Yams

/// A configuration file that cannot be used, naming the file and the key at fault.
public struct ConfigError: Error, CustomStringConvertible {
    public let file: String
    public let message: String
    /// What `file` is: "config", or "cache" for the latent cache a run's config is checked against.
    public let subject: String
    public init(file: String, _ message: String) {
        self.init(subject: "config", file: file, message)
    }
    /// The latent cache at `directory` does not fit what the config asks of it.
    public static func cache(_ directory: String, _ message: String) -> ConfigError {
        ConfigError(subject: "cache", file: directory, message)
    }
    private init(subject: String, file: String, _ message: String) {
        self.subject = subject
        self.file = file
        self.message = message
    }
    public var description: String { "\(subject) \(file): \(message)" }
}

/// Reads YAML configs (CompVis style: nested model / data / trainer keys) into Codable values.
///
/// Unknown keys are errors, not silently ignored: a misspelt `ch_mlt` would otherwise train
/// a model with the default and waste a run. Missing keys take the documented defaults.
public enum ConfigLoader {
    public static func load<T: Codable>(_ type: T.Type, from url: URL) throws -> T {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else {
            throw ConfigError(file: url.path, "cannot read the file")
        }
        return try parse(type, yaml: text, file: url.path)
    }

    public static func parse<T: Codable>(_ type: T.Type, yaml: String, file: String = "<string>") throws -> T {
        let tree = try loadTree(yaml: yaml, file: file)
        guard tree == nil || tree is [String: Any] else {
            throw ConfigError(file: file, "the top level must be a mapping of keys")
        }
        let value: T
        do {
            value = try YAMLDecoder().decode(T.self, from: yaml)
        } catch let DecodingError.typeMismatch(expected, context) {
            throw ConfigError(file: file, "key \(path(context.codingPath)): expected \(expected) (\(context.debugDescription))")
        } catch let DecodingError.valueNotFound(_, context) {
            throw ConfigError(file: file, "key \(path(context.codingPath)) has no value")
        } catch let DecodingError.keyNotFound(key, context) {
            throw ConfigError(file: file, "missing key \(path(context.codingPath + [key]))")
        } catch let DecodingError.dataCorrupted(context) {
            throw ConfigError(file: file, "key \(path(context.codingPath)): \(context.debugDescription)")
        } catch {
            throw ConfigError(file: file, "\(error)")
        }
        // Every key the file sets must be one the configuration knows.
        let known = try Yams.load(yaml: YAMLEncoder().encode(value))
        if let unknown = firstUnknownKey(tree ?? [String: Any](), known: known ?? [String: Any](), prefix: "") {
            throw ConfigError(file: file, "unknown key \(unknown)")
        }
        return value
    }

    /// The YAML as plain values (nil for an empty file). Every reader of a config goes through
    /// here: Yams builds a dictionary only from plain keys and traps on a key that is a list
    /// or a mapping, so the composed tree is checked first.
    static func loadTree(yaml: String, file: String) throws -> Any? {
        do {
            try refuseNonScalarKeys(try Yams.compose(yaml: yaml), file: file)
            return try Yams.load(yaml: yaml)
        } catch let error as ConfigError {
            throw error
        } catch {
            throw ConfigError(file: file, "not valid YAML: \(error)")
        }
    }

    static func path(_ keys: [CodingKey]) -> String {
        keys.isEmpty ? "(top level)" : keys.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
    }

    static func firstUnknownKey(_ given: Any, known: Any, prefix: String) -> String? {
        guard let g = given as? [String: Any] else { return nil }
        // A known mapping that is absent/nil (an optional section) accepts nothing to compare.
        guard let k = known as? [String: Any] else { return nil }
        for key in g.keys.sorted() {
            let full = prefix.isEmpty ? key : prefix + "." + key
            if g[key] is NSNull { continue }  // `key: null` leaves an optional unset
            guard let sub = k[key] else { return full }
            if let found = firstUnknownKey(g[key]!, known: sub, prefix: full) { return found }
        }
        return nil
    }

    /// A mapping key must be a plain value (`model:`), not a list or a mapping (`? [a, b]`).
    static func refuseNonScalarKeys(_ node: Node?, file: String) throws {
        guard let node else { return }
        switch node {
        case .mapping(let mapping):
            for (key, value) in mapping {
                guard case .scalar = key else {
                    throw ConfigError(file: file, "line \((key.mark?.line).map(String.init) ?? "?"): a key must be a plain name, "
                        + "not a list or a mapping")
                }
                try refuseNonScalarKeys(value, file: file)
            }
        case .sequence(let sequence):
            for item in sequence { try refuseNonScalarKeys(item, file: file) }
        default:
            break
        }
    }
}
