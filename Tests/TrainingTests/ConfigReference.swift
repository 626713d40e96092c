import Foundation
import Yams

/// The key tables of docs/CONFIG.md, as its layout states them:
/// - a `##` heading naming a command (`ldm train-autoencoder`, `ldm train-ldm`,
///   `ldm train-classifier`) starts that kind's part; one with "shared" in it starts the
///   sections every kind uses unless its own part documents the same section;
/// - a `###` heading names its section by the key paths in backticks (`model.unet`; a shared
///   section may name several, as `data` and an LDM's `data.images`);
/// - a row `` | `key` | type | default | what it does | reference key | `` documents one key of
///   that section. Rows elsewhere, other cell counts, empty defaults and repeated keys are
///   layout problems. A default cell that starts with a `literal` states the decoder's default;
///   one that starts with "none" says the key is unset unless given.
struct ConfigReference {
    enum Part: Hashable {
        case kind(ShippedConfigs.Kind)
        case shared
    }

    struct Section {
        let part: Part
        let paths: [String]
        var keys: [String] = []
        /// The default cell of each key.
        var defaults: [String: String] = [:]
    }

    private(set) var sections: [Section] = []
    private(set) var problems: [String] = []

    static func load() throws -> ConfigReference {
        ConfigReference(markdown: try String(contentsOf: file, encoding: .utf8))
    }

    static let file = ShippedConfigs.repository.appendingPathComponent("docs/CONFIG.md")

    init(markdown: String) {
        var part: Part?
        var current: Int?
        var inCode = false
        for (number, line) in markdown.components(separatedBy: "\n").enumerated() {
            let at = "docs/CONFIG.md:\(number + 1)"
            if line.hasPrefix("```") { inCode.toggle(); continue }
            if inCode { continue }
            if line.hasPrefix("## ") {
                part = Self.part(ofHeading: line)
                current = nil
            } else if line.hasPrefix("### ") {
                let paths = Self.backticked(line).filter(Self.isKeyPath)
                current = nil
                if let part, !paths.isEmpty {
                    sections.append(Section(part: part, paths: paths))
                    current = sections.count - 1
                }
            } else if line.hasPrefix("| `") {
                guard let index = current else {
                    problems.append("\(at): a key row outside a section heading (### `path`) of a config kind's part")
                    continue
                }
                let cells = line.split(separator: "|", omittingEmptySubsequences: false).dropFirst().dropLast()
                    .map { $0.trimmingCharacters(in: .whitespaces) }
                guard cells.count == 5 else {
                    problems.append("\(at): \(cells.count) cells, not 5 (key, type, default, what it does, reference key)")
                    continue
                }
                guard let key = Self.backticked(cells[0]).first, cells[0] == "`\(key)`" else {
                    problems.append("\(at): the first cell must be one `key`")
                    continue
                }
                if cells[2].isEmpty { problems.append("\(at): `\(key)` has no default (write `required` or a value)") }
                if sections[index].keys.contains(key) { problems.append("\(at): `\(key)` is documented twice in its section") }
                sections[index].keys.append(key)
                sections[index].defaults[key] = cells[2]
            }
        }
    }

    private static func part(ofHeading line: String) -> Part? {
        for kind in ShippedConfigs.Kind.allCases where line.contains("`ldm \(kind.command)`") { return .kind(kind) }
        return line.lowercased().contains("shared") ? .shared : nil
    }

    private static func backticked(_ text: String) -> [String] {
        text.split(separator: "`", omittingEmptySubsequences: false).enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) }
    }

    private static func isKeyPath(_ text: String) -> Bool {
        !text.isEmpty && text.allSatisfy { $0.isLowercase || $0.isNumber || $0 == "_" || $0 == "." }
    }

    /// The section documenting `path` for `kind`: its own part's, else a shared one.
    func section(_ kind: ShippedConfigs.Kind, _ path: String) -> Section? {
        sections.first { $0.part == .kind(kind) && $0.paths.contains(path) }
            ?? sections.first { $0.part == .shared && $0.paths.contains(path) }
    }

    /// The key paths of `required` that no row documents (or, for a top-level key, that no
    /// section heading names), each with where it was looked for.
    func undocumented(_ required: Set<String>, kind: ShippedConfigs.Kind) -> [String] {
        required.sorted().compactMap { path in
            let parts = path.split(separator: ".").map(String.init)
            guard parts.count > 1 else {
                return section(kind, path) == nil ? "\(kind.rawValue): `\(path)` (no ### `\(path)` section)" : nil
            }
            let parent = parts.dropLast().joined(separator: ".")
            guard let section = section(kind, parent) else {
                return "\(kind.rawValue): \(path) (no ### `\(parent)` section)"
            }
            return section.keys.contains(parts.last!) ? nil : "\(kind.rawValue): \(path) (no `\(parts.last!)` row under `\(parent)`)"
        }
    }

    /// Documented defaults that are not `defaults` (key path → the value a config decoded from an
    /// empty file has; keys that decode to nil are absent).
    func wrongDefaults(_ defaults: [String: Any], kind: ShippedConfigs.Kind) -> [String] {
        defaults.keys.sorted().compactMap { path in
            let parts = path.split(separator: ".").map(String.init)
            guard parts.count > 1, let cell = section(kind, parts.dropLast().joined(separator: "."))?.defaults[parts.last!] else {
                return nil  // an undocumented key is reported by `undocumented`
            }
            let value = defaults[path]!
            if cell.hasPrefix("none") { return "\(kind.rawValue): \(path) is documented as unset but defaults to \(value)" }
            guard cell.hasPrefix("`"), let literal = Self.backticked(cell).first else { return nil }
            guard let documented = try? Yams.load(yaml: literal), Self.same(documented, value) else {
                return "\(kind.rawValue): \(path) is documented as \(literal) but defaults to \(value)"
            }
            return nil
        }
    }

    /// Equal YAML values: numbers by value (an int documented for a float), lists element by element.
    static func same(_ a: Any, _ b: Any) -> Bool {
        func number(_ x: Any) -> Double? { (x as? Int).map(Double.init) ?? (x as? Double) }
        if let x = a as? Bool, let y = b as? Bool { return x == y }
        if a is Bool || b is Bool { return false }
        if let x = number(a), let y = number(b) { return abs(x - y) <= 1e-6 * max(abs(x), abs(y)) }
        if let x = a as? String, let y = b as? String { return x == y }
        if let x = a as? [Any], let y = b as? [Any] { return x.count == y.count && zip(x, y).allSatisfy { same($0, $1) } }
        return false
    }

    /// Documented keys that no config type knows: `known` gives each kind's key paths.
    func unknown(known: (ShippedConfigs.Kind) -> Set<String>) -> [String] {
        var found: [String] = []
        for section in sections {
            let kinds: [ShippedConfigs.Kind]
            switch section.part {
            case .kind(let kind): kinds = [kind]
            case .shared: kinds = ShippedConfigs.Kind.allCases
            }
            for path in section.paths {
                if !kinds.contains(where: { known($0).contains(path) }) {
                    found.append("section `\(path)` (no config type has it)")
                    continue
                }
                for key in section.keys where !kinds.contains(where: { known($0).contains(path + "." + key) }) {
                    found.append("\(path).\(key)")
                }
            }
        }
        return found
    }
}

extension ShippedConfigs.Kind {
    /// The `ldm` subcommand that reads a config of this kind.
    var command: String {
        switch self {
        case .autoencoder: return "train-autoencoder"
        case .ldm: return "train-ldm"
        case .classifier: return "train-classifier"
        }
    }
}
