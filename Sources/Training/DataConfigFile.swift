import Foundation
import Yams

extension DataConfig {
    /// The `data` section of a YAML config (a whole training config such as
    /// Configs/autoencoder_kl_f4_fashion_mnist.yaml), or the file itself when it has no `data`
    /// key (a file holding only a data section). Unknown keys in the section are errors.
    public static func load(fromConfigFile url: URL) throws -> DataConfig {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else {
            throw ConfigError(file: url.path, "cannot read the file")
        }
        let tree = try ConfigLoader.loadTree(yaml: text, file: url.path)
        guard let top = tree as? [String: Any] else { throw ConfigError(file: url.path, "the top level must be a mapping of keys") }
        guard let section = top["data"] else { return try ConfigLoader.parse(DataConfig.self, yaml: text, file: url.path) }
        guard section is [String: Any] else { throw ConfigError(file: url.path, "key data must be a mapping") }
        return try ConfigLoader.parse(DataConfig.self, yaml: try Yams.dump(object: section), file: url.path + " (data section)")
    }
}
