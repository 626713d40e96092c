import Checkpoint
import Data
import Foundation
import XCTest
@testable import Training

/// A tiny autoencoder run for resume tests: ch 32, ch_mult [1, 2], one res block, 16×16 grey
/// images from a generated folder, batch 2 per rank, no LPIPS (perceptual_weight 0).
struct TinyRun {
    let root: URL
    let images: URL

    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("resume-test-\(UUID().uuidString)")
        images = root.appendingPathComponent("images")
        try TinyRun.writeImages(to: images, count: 10, seed: 1)
    }

    func remove() { try? FileManager.default.removeItem(at: root) }

    /// `count` noise images, different for different seeds.
    static func writeImages(to directory: URL, count: Int, seed: UInt64) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var state = seed &* 0x9E37_79B9_7F4A_7C15
        for i in 0..<count {
            let pixels = (0..<256).map { _ -> UInt8 in
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return UInt8(truncatingIfNeeded: state >> 56)
            }
            try PNG.write(Image8(width: 16, height: 16, channels: 1, pixels: pixels),
                          to: directory.appendingPathComponent(String(format: "%02d.png", i)))
        }
    }

    func yaml(run: String, maxSteps: Int, discStart: Int, checkpointEvery: Int = 1000, logEvery: Int = 2,
              images: URL? = nil, batch: Int = 2, extraTrainer: String = "") -> String {
        """
        model:
          base_learning_rate: 1.0e-3
          autoencoder: {ch: 32, ch_mult: [1, 2], num_res_blocks: 1, resolution: 16, in_channels: 1, z_channels: 4, embed_dim: 4}
          loss: {perceptual_weight: 0, disc_start: \(discStart), disc_ndf: 8, disc_num_layers: 2}
        data: {dataset: image-folder, path: \((images ?? self.images).path), channels: 1, resolution: 16, batch_size: \(batch)}
        trainer: {max_steps: \(maxSteps), log_every: \(logEvery), image_every: 1000, checkpoint_every: \(checkpointEvery), \
        run_dir: \(runDirectory(run).path), seed: 7\(extraTrainer)}

        """
    }

    func runDirectory(_ name: String) -> URL { root.appendingPathComponent(name) }

    func config(run: String, maxSteps: Int, discStart: Int, checkpointEvery: Int = 1000, logEvery: Int = 2,
                images: URL? = nil, extraTrainer: String = "") throws -> AutoencoderTrainingConfig {
        try ConfigLoader.parse(AutoencoderTrainingConfig.self,
                               yaml: yaml(run: run, maxSteps: maxSteps, discStart: discStart, checkpointEvery: checkpointEvery,
                                          logEvery: logEvery, images: images, extraTrainer: extraTrainer))
    }

    /// Writes a config file for the `ldm` binary.
    func configFile(_ name: String, _ text: String) throws -> URL {
        let url = root.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    func checkpoint(_ run: String, step: Int) -> URL {
        TrainingCheckpointStore(runDirectory: runDirectory(run)).directory(step: step)
    }
}

/// Checks that two runs ended in the same state, bit for bit: every file of their final
/// checkpoints has the same XXH64 (weights, discriminator, both optimizers' moments and step
/// counts, every rank's generators and cursor), the training state agrees apart from the
/// run directory and loop length, and the logged losses are identical.
func assertSameTraining(_ a: URL, _ b: URL, step: Int, file: StaticString = #filePath, line: UInt = #line) throws {
    let store = { (run: URL) in TrainingCheckpointStore(runDirectory: run).directory(step: step) }
    let ca = try TrainingCheckpoint(directory: store(a)), cb = try TrainingCheckpoint(directory: store(b))
    XCTAssertEqual(ca.fileNames, cb.fileNames, file: file, line: line)
    // trainer_state.json and config.yaml name the run directory; the state is compared below.
    for record in ca.manifest.files where ![TrainingStateRecord.fileName, "config.yaml"].contains(record.name) {
        XCTAssertEqual(record.xxh64, cb.manifest.record(named: record.name)?.xxh64,
                       "\(record.name) differs between \(a.lastPathComponent) and \(b.lastPathComponent)", file: file, line: line)
    }
    var sa = try ca.json(TrainingStateRecord.self, TrainingStateRecord.fileName)
    var sb = try cb.json(TrainingStateRecord.self, TrainingStateRecord.fileName)
    XCTAssertEqual(try TrainingResume.configDifferences(saved: sa.config, current: sb.config), [], file: file, line: line)
    sa.config = ""; sb.config = ""
    sa.configSource = nil; sb.configSource = nil
    XCTAssertEqual(sa, sb, file: file, line: line)
    let la = try loggedLosses(a), lb = try loggedLosses(b)
    XCTAssertFalse(la.isEmpty, "no metrics logged in \(a.path)", file: file, line: line)
    XCTAssertEqual(la, lb, "logged losses differ", file: file, line: line)
}

/// metrics.jsonl without the timings, one dictionary per line.
func loggedLosses(_ run: URL) throws -> [[String: Double]] {
    let text = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
    return try text.split(separator: "\n").map { line in
        var record = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Double])
        record["seconds_per_step"] = nil
        return record
    }
}

