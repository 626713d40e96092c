import Foundation

/// The repository's Configs/ files and the kind of each, by its name's prefix: which `ldm`
/// command reads it, and so which config type it is decoded as.
enum ShippedConfigs {
    enum Kind: String, CaseIterable {
        case autoencoder, ldm, classifier

        var prefix: String { rawValue + "_" }
    }

    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let directory = repository.appendingPathComponent("Configs")

    /// Every shipped YAML file's name, sorted.
    static func all() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".yaml") }.sorted()
    }

    /// The shipped files of one kind, sorted.
    static func names(_ kind: Kind) throws -> [String] {
        try all().filter { $0.hasPrefix(kind.prefix) }
    }

    /// nil: a file no test would read with a config type.
    static func kind(of name: String) -> Kind? {
        Kind.allCases.first { name.hasPrefix($0.prefix) }
    }
}
