import Checkpoint
import Distributed
import Foundation
import Tensor

/// The rules every trainer follows to resume: which checkpoint, what may differ from the run
/// that wrote it, and what must not.
public enum TrainingResume {
    /// Resolves `--resume` (nil: start fresh; `latest`; a directory) the same way on every
    /// rank: rank 0 looks, every rank opens what it found. `latest` without a committed
    /// checkpoint starts fresh and says so.
    public static func locate(_ spec: String?, store: TrainingCheckpointStore, communicator: Communicator,
                              say: (String) -> Void) throws -> TrainingCheckpoint? {
        guard let spec else { return nil }
        var found = ""
        var problem = ""
        if communicator.isRoot {
            do {
                found = try store.resolve(spec)?.path ?? ""
            } catch {
                problem = "\(error)"
            }
        }
        problem = try communicator.broadcast(problem, root: 0)
        guard problem.isEmpty else { throw TrainingCheckpointError(path: store.root.path, "\(problem)") }
        found = try communicator.broadcast(found, root: 0)
        if found.isEmpty {
            say("resume: no committed checkpoint in \(store.root.path); starting fresh")
            return nil
        }
        let checkpoint = try TrainingCheckpoint(directory: URL(fileURLWithPath: found))
        say("resume: step \(checkpoint.step) from \(checkpoint.directory.path) (written by \(checkpoint.worldSize) rank(s))")
        return checkpoint
    }

    /// The batch per rank that keeps the checkpoint's global batch on `worldSize` ranks: the
    /// data cursor counts global batches, so it only means the same position if the global
    /// batch is unchanged.
    public static func batchPerRank(globalBatch: Int, worldSize: Int, checkpoint: String) throws -> Int {
        guard globalBatch % worldSize == 0 else {
            let options = (1...min(globalBatch, 64)).filter { globalBatch % $0 == 0 }.map(String.init).joined(separator: ", ")
            throw TrainingCheckpointError(path: checkpoint, file: TrainingStateRecord.fileName,
                                          "global_batch_size \(globalBatch) is not divisible by the new world size "
                                          + "\(worldSize): resume on a number of ranks dividing it (\(options))")
        }
        return globalBatch / worldSize
    }

    /// Dotted keys (and prefixes, ending in ".") that may change between a checkpoint and
    /// the run resuming from it: loop lengths and intervals, paths, retention, the per-rank
    /// batch (the global batch is checked instead).
    public static let changeableKeys: Set<String> = [
        "trainer.max_steps", "trainer.log_every", "trainer.image_every", "trainer.checkpoint_every",
        "trainer.evaluation_images", "trainer.run_dir", "trainer.bucket_mib", "trainer.overlap_allreduce", "trainer.shard_weight_update", "trainer.keep_last",
        "trainer.keep_every", "data.batch_size", "data.path", "data.validation_path",
        // Where fresh weights come from: a resumed run takes its weights from the checkpoint.
        "model.ckpt_path", "model.ignore_keys",
    ]

    /// The config as canonical JSON (sorted keys), as saved in trainer_state.json.
    public static func canonicalJSON<C: Encodable>(_ config: C) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(config), as: UTF8.self)
    }

    /// Every leaf of a JSON document by dotted key, as canonical JSON text.
    static func flatten(_ json: String) throws -> [String: String] {
        let object = try JSONSerialization.jsonObject(with: Data(json.utf8), options: [.fragmentsAllowed])
        var result: [String: String] = [:]
        func walk(_ value: Any, _ key: String) {
            if let dict = value as? [String: Any] {
                for (k, v) in dict { walk(v, key.isEmpty ? k : key + "." + k) }
            } else {
                let data = (try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed])) ?? Data()
                result[key] = String(decoding: data, as: UTF8.self)
            }
        }
        walk(object, "")
        return result
    }

    static func isChangeable(_ key: String, _ changeable: Set<String>) -> Bool {
        changeable.contains(key) || changeable.contains { $0.hasSuffix(".") && key.hasPrefix($0) }
    }

    /// Keys whose values differ, as "key: checkpoint A, now B" (changeable keys left out).
    public static func configDifferences(saved: String, current: String,
                                         changeable: Set<String> = changeableKeys) throws -> [String] {
        let a = try flatten(saved), b = try flatten(current)
        return Set(a.keys).union(b.keys).sorted().compactMap { key in
            guard !isChangeable(key, changeable), a[key] != b[key] else { return nil }
            return "\(key): checkpoint \(a[key] ?? "(absent)"), now \(b[key] ?? "(absent)")"
        }
    }

    /// XXH64 of the config without its changeable keys.
    public static func configFingerprint(_ json: String, changeable: Set<String> = changeableKeys) throws -> String {
        let lines = try flatten(json).filter { !isChangeable($0.key, changeable) }.sorted { $0.key < $1.key }
            .map { "\($0.key)=\($0.value)\n" }.joined()
        return XXH64.hexString(Array(lines.utf8).withUnsafeBytes { XXH64.hash($0) })
    }

    /// Refuses a config whose training-relevant keys differ from the checkpoint's.
    public static func requireSameConfig(saved: TrainingStateRecord, current: String, checkpoint: TrainingCheckpoint,
                                         changeable: Set<String> = changeableKeys) throws {
        let differences = try configDifferences(saved: saved.config, current: current, changeable: changeable)
        guard differences.isEmpty else {
            throw TrainingCheckpointError(path: checkpoint.directory.path, file: TrainingStateRecord.fileName,
                                          "the config differs from the one this checkpoint was trained with:\n  "
                                          + differences.joined(separator: "\n  ")
                                          + "\n(start a new run_dir for another configuration)")
        }
    }

    /// XXH64 over `name:shape` of every tensor, in order: same architecture, same fingerprint.
    public static func modelFingerprint(_ tensors: [(String, Tensor)]) -> String {
        let text = tensors.map { "\($0.0):\($0.1.shape)\n" }.joined()
        return XXH64.hexString(Array(text.utf8).withUnsafeBytes { XXH64.hash($0) })
    }
}
