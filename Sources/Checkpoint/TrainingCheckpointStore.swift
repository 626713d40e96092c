import Foundation

/// The checkpoints of one run: `<run_dir>/checkpoints/step-NNNNNNNN/`, one directory per
/// step. Only directories holding a manifest (the commit marker) count as checkpoints.
public struct TrainingCheckpointStore: Sendable {
    public let runDirectory: URL
    public let root: URL

    public init(runDirectory: URL) {
        self.runDirectory = runDirectory.standardizedFileURL
        root = self.runDirectory.appendingPathComponent("checkpoints")
    }

    public static let directoryPrefix = "step-"

    /// Zero-padded so that names sort as steps do.
    public static func directoryName(step: Int) -> String {
        precondition(step >= 0, "checkpoint step \(step) is negative")
        let digits = String(step)
        return directoryPrefix + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }

    /// The step a directory name stands for, nil for anything else.
    public static func step(ofDirectoryName name: String) -> Int? {
        guard name.hasPrefix(directoryPrefix) else { return nil }
        let digits = name.dropFirst(directoryPrefix.count)
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber) else { return nil }
        return Int(digits)
    }

    public func directory(step: Int) -> URL { root.appendingPathComponent(Self.directoryName(step: step)) }

    public static func isCommitted(_ directory: URL) -> Bool {
        FileManager.default.fileExists(atPath: directory.appendingPathComponent(TrainingCheckpointManifest.fileName).path)
    }

    /// Every step directory, committed or not, by step.
    public func allDirectories() -> [(step: Int, url: URL, committed: Bool)] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: root.path) else { return [] }
        return names.compactMap { name in
            guard let step = Self.step(ofDirectoryName: name) else { return nil }
            let url = root.appendingPathComponent(name)
            return (step, url, Self.isCommitted(url))
        }.sorted { $0.step < $1.step }
    }

    /// Committed checkpoints, oldest first.
    public func committed() -> [(step: Int, url: URL)] {
        allDirectories().filter(\.committed).map { ($0.step, $0.url) }
    }

    /// The newest committed checkpoint, if any.
    public func latest() -> URL? { committed().last?.url }

    /// What `--resume` names: `latest` (nil when the run has no committed checkpoint yet) or
    /// a checkpoint directory, which must be committed.
    public func resolve(_ spec: String) throws -> URL? {
        if spec == "latest" { return latest() }
        let url = URL(fileURLWithPath: spec).standardizedFileURL
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw TrainingCheckpointError(path: url.path, "--resume: no such checkpoint directory (use `latest` or a "
                + "directory like \(directory(step: 1000).path))")
        }
        guard Self.isCommitted(url) else {
            throw TrainingCheckpointError(path: url.path, file: TrainingCheckpointManifest.fileName,
                                          "missing: this checkpoint was never committed (its write was interrupted); "
                                          + "resume from an earlier one or `latest`")
        }
        return url
    }

    /// Retention, after a commit: keeps the newest `keepLast` committed checkpoints and every
    /// one whose step is a multiple of `keepEvery` (0 = none kept for that reason), removes
    /// the other committed ones and every uncommitted directory (left by interrupted writes:
    /// call this only when no write is in progress). Returns what was removed.
    @discardableResult
    public func prune(keepLast: Int, keepEvery: Int) throws -> [URL] {
        precondition(keepLast >= 1, "keepLast \(keepLast) must be at least 1: the newest checkpoint is always kept")
        let directories = allDirectories()
        let committedSteps = directories.filter(\.committed).map(\.step)
        let newest = Set(committedSteps.suffix(keepLast))
        var removed: [URL] = []
        for d in directories {
            let keep = d.committed && (newest.contains(d.step) || (keepEvery > 0 && d.step % keepEvery == 0))
            if keep { continue }
            // The marker goes first, so a half-removed checkpoint is never taken for a whole one.
            let marker = d.url.appendingPathComponent(TrainingCheckpointManifest.fileName)
            if d.committed {
                try FileManager.default.removeItem(at: marker)
                try AtomicFile.syncDirectory(at: d.url)
            }
            try FileManager.default.removeItem(at: d.url)
            removed.append(d.url)
        }
        if !removed.isEmpty { try AtomicFile.syncDirectory(at: root) }
        return removed
    }
}
