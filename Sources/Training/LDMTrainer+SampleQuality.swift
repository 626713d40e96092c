import Data
import Evaluation
import Foundation
import LatentCache
import Models
import Tensor

/// The trainer's light generation check (`evaluation.classifier`): a few hundred samples
/// from the EMA weights scored in the evaluation classifier's feature space, against the
/// first stage's decodings of as many held-out latents — so it measures the diffusion model
/// alone, with no image data needed during training. Collective: ranks split the samples.
extension LDMTrainer {
    struct SampleQualityState {
        let metrics: GenerationMetrics
        let reference: GenerationMetrics.FeatureSet
    }

    func sampleQualityState() throws -> SampleQualityState? {
        if let sampleQuality { return sampleQuality }
        guard let path = config.evaluation.classifier else { return nil }
        let (classifier, _, fingerprint) = try EvaluationClassifier.load(from: URL(fileURLWithPath: path))
        let firstStage = try loadFirstStage()
        let conditioning = config.model.conditioning
        try ClassifierEvaluation.check(classifier, file: path, channels: firstStage.config.outChannels,
                                       resolution: firstStage.config.resolution,
                                       classCount: conditioning.isClassConditional ? conditioning.numClasses : nil)
        let n = config.evaluation.fdSamples, d = classifier.config.featureDimension
        guard n > d else {
            throw ConfigError(file: path, "evaluation.fd_samples \(n) is too few for a Fréchet distance in the classifier's "
                + "\(d)-d features: use at least \(d + 1)")
        }
        let metrics = GenerationMetrics(networks: [ClassifierFeatures(classifier: classifier, fingerprint: fingerprint)],
                                        classifier: classifier, communicator: communicator)
        // The reference: held-out posterior means decoded, this rank's share.
        let heldOut = try LatentCacheReader(directory: cacheDirectory, split: config.data.testSplit, globalBatchSize: 1,
                                            seed: 0, shuffle: false, dropLast: false)
        let count = min(n, heldOut.sampleCount)
        guard count > d else {
            throw ConfigError.cache(cacheDirectory.path, "the \(config.data.testSplit) split holds \(heldOut.sampleCount) latents, "
                + "too few for a Fréchet distance in \(d)-d features")
        }
        let share = evaluationShard(count: count, rank: communicator.rank, worldSize: communicator.size)
        let batch = try heldOut.batch(positions: Array(share))
        let images = LatentDiffusionSampling.decode(batch.latents, scaleFactor: 1, firstStage: firstStage)
        let reference = try metrics.features(ofShare: images, labels: conditioning.isClassConditional ? batch.labels : nil)
        let state = SampleQualityState(metrics: metrics, reference: reference)
        sampleQuality = state
        return state
    }

    func evaluateSampleQuality() throws {
        guard let state = try sampleQualityState() else { return }
        let started = ProgressReporter.now()
        let n = config.evaluation.fdSamples
        let conditioning = config.model.conditioning
        let labels: [Int]? = conditioning.isClassConditional ? conditioning.numClasses.map { c in (0..<n).map { $0 % c } } : nil
        var sampling = LatentDiffusionSampling()
        sampling.kind = .ddim
        sampling.steps = config.evaluation.fdSteps
        sampling.guidance = config.sampling.guidance
        sampling.seed = config.evaluation.seed
        let share = evaluationShard(count: n, rank: communicator.rank, worldSize: communicator.size)
        let mine = labels.map { Array($0[share]) }
        let latents = try withEvaluationWeights {
            try sampling.sampleLatents(model, latentShape: reader.latentShape, indices: Array(share), labels: mine)
        }
        let images = LatentDiffusionSampling.decode(latents, scaleFactor: model.scaleFactor, firstStage: try loadFirstStage())
        let generated = try state.metrics.features(ofShare: images, labels: mine)
        let distances = try state.metrics.distances(generated: generated, real: state.reference)[0]
        var scalars: [String: Float] = ["samples/fd": Float(distances.fd), "samples/precision": Float(distances.precision),
                                        "samples/recall": Float(distances.recall)]
        var line = String(format: "samples (%d, DDIM %d steps, guidance %.1f, EMA): FD %.3f, precision %.3f, recall %.3f",
                          n, sampling.steps, sampling.guidance, distances.fd, distances.precision, distances.recall)
        if labels != nil, let accuracy = generated.scores?.accuracy, let real = state.reference.scores?.accuracy {
            scalars["samples/accuracy"] = Float(accuracy)
            line += String(format: ", class accuracy %.2f %% (held-out decodings %.2f %%)", 100 * accuracy, 100 * real)
        }
        reporter.say(line + String(format: " in the classifier's space (%.1f s)", ProgressReporter.now() - started))
        guard communicator.isRoot else { return }
        reporter.scalars(scalars, step: step)
        var record: [String: Any] = ["step": step, "count": n, "network": distances.network, "fingerprint": distances.fingerprint]
        for (key, value) in scalars { record[String(key.dropFirst("samples/".count))] = Double(value) }
        let data = try JSONSerialization.data(withJSONObject: record, options: [.sortedKeys]) + Data("\n".utf8)
        let url = runDirectory.appendingPathComponent(Self.sampleQualityFile)
        if !FileManager.default.fileExists(atPath: url.path) { _ = FileManager.default.createFile(atPath: url.path, contents: nil) }
        let handle = try FileHandle(forWritingTo: url)
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: data)
    }

    static let sampleQualityFile = "samples.jsonl"
}
