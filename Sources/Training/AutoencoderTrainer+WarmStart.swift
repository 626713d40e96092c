import Checkpoint
import Foundation
import Models
import NN
import Tensor

extension AutoencoderTrainer {
    /// Replaces the random initialisation with the weights at `model.ckpt_path` (the
    /// reference's `init_from_ckpt`): every parameter and buffer must be there with its shape,
    /// except those under an `ignore_keys` prefix, which keep their initialisation; keys the
    /// model does not have are refused, so a file of another architecture fails by name.
    /// Every rank reads the same file, so replicas stay identical.
    func warmStart(from path: String, ignoring prefixes: [String]) throws {
        let url = URL(fileURLWithPath: path)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ConfigError(file: "config", "model.ckpt_path: \(path) does not exist")
        }
        let tensors: [String: Tensor]
        if isDirectory.boolValue {
            // A training checkpoint (step-N/): its autoencoder weights.
            tensors = try TrainingCheckpoint(directory: url).tensors(Self.weightsFile).allTensors()
        } else {
            tensors = try SafeTensors.read(url).allTensors()
        }
        let ignored = { (key: String) in prefixes.contains { key.hasPrefix($0) } }
        let kept = tensors.filter { !ignored($0.key) }
        let result: StateDictLoadResult
        do {
            result = try model.module.load(stateDict: kept, strict: false)
        } catch {
            throw CheckpointLoadError(path: path, "model.ckpt_path: \(error)")
        }
        let missing = result.missingKeys.filter { !ignored($0) }
        guard missing.isEmpty, result.unexpectedKeys.isEmpty else {
            var problems: [String] = []
            if !missing.isEmpty { problems.append("missing \(missing.joined(separator: ", "))") }
            if !result.unexpectedKeys.isEmpty {
                problems.append("not in this model \(result.unexpectedKeys.joined(separator: ", "))")
            }
            throw CheckpointLoadError(path: path, "model.ckpt_path does not fit model.autoencoder: "
                + problems.joined(separator: "; ") + " (ignore_keys lists prefixes to leave out)")
        }
        reporter.say("initialised from \(path): \(kept.count) tensors"
            + (prefixes.isEmpty ? "" : ", \(tensors.count - kept.count) ignored (\(prefixes.joined(separator: ", ")))"))
    }
}
