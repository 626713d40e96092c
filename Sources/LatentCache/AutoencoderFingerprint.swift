import Checkpoint
import Foundation
import Models

/// Identifies the autoencoder a cache was made with: XXH64 over the weights file's bytes
/// followed by the architecture JSON (sorted keys). Retraining, fine-tuning or editing the
/// config all change it; moving or renaming the file does not.
public enum AutoencoderFingerprint {
    public static func compute(weights url: URL, config: AutoencoderConfig) throws -> LatentCacheManifest.Autoencoder {
        let bytes: Data
        do { bytes = try Data(contentsOf: url, options: .alwaysMapped) } catch {
            throw LatentCacheError.invalidOption("cannot read the autoencoder \(url.path): \(error.localizedDescription)")
        }
        let json = try configJSON(config)
        var hash = XXH64()
        hash.update(bytes)
        hash.update(Data(json.utf8))
        return LatentCacheManifest.Autoencoder(fingerprint: XXH64.hexString(hash.digest()), path: url.standardizedFileURL.path,
                                               regularizer: config.regularizer.rawValue, config: json)
    }

    /// A first stage written by the trainer, with the fingerprint a cache or model records for it.
    public static func loadModel(at url: URL) throws -> (model: FirstStageModel, fingerprint: String) {
        let model = try FirstStageModel.load(from: url)
        return (model, try compute(weights: url, config: model.config).fingerprint)
    }

    static func configJSON(_ config: AutoencoderConfig) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(config), as: UTF8.self)
    }
}
