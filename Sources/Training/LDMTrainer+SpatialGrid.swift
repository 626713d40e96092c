import Data
import Diffusion
import Foundation
import LatentCache
import Tensor

extension LDMTrainer {
    /// A super-resolution or inpainting model's grid, on rank 0: for the first held-out images,
    /// a row of inputs (the bicubic upsampling of the low-resolution image, or the masked image),
    /// a row of the model's outputs (inpainting: generated inside the mask, original outside)
    /// and a row of originals.
    func writeSpatialSampleGrid(_ source: SpatialConditionSource) throws {
        guard communicator.isRoot else { return }
        let firstStage = try loadFirstStage()
        let s = config.sampling
        let split = config.data.testSplit.isEmpty ? config.data.trainSplit : config.data.testSplit
        let held = try LatentCacheReader(directory: cacheDirectory, split: split, globalBatchSize: 1, seed: 0, shuffle: false, dropLast: false)
        let positions = Array(0..<min(s.perClass, held.sampleCount))
        let batch = try held.batch(positions: positions)
        let examples = try source.heldOutExamples(split: split, indices: batch.indices, positions: positions, scaleFactor: model.scaleFactor)
        let sampling = gridSampling
        let known = examples.masks.map { masks in
            SpatialInputs.knownLatents(images: examples.images, masks: masks, firstStage: firstStage, scaleFactor: model.scaleFactor,
                                       latentShape: reader.latentShape)
        }
        let started = ProgressReporter.now()
        let latents = try withEvaluationWeights {
            // A hybrid model's class or caption is the held-out image's own.
            try sampling.sampleLatents(model, latentShape: reader.latentShape, indices: positions,
                                       labels: config.model.conditioning.isClassConditional ? batch.labels : nil,
                                       captions: try captionSource?.captions(for: batch, step: 0), spatial: examples.condition,
                                       known: known)
        }
        var outputs = LatentDiffusionSampling.decode(latents, scaleFactor: model.scaleFactor, firstStage: firstStage)
        if let masks = examples.masks { outputs = SpatialInputs.composite(generated: outputs, original: examples.images, masks: masks) }
        let grid = Tensor.concatenate([examples.inputs, outputs, examples.images], alongAxis: 0)
        let url = runDirectory.appendingPathComponent("images/samples_step\(String(format: "%06d", step)).png")
        let columns = positions.count
        try ImageGrid.write(ImageGrid.enlarged(grid, minimumWidth: 600, columns: columns), to: url, columns: columns)
        let rows = source.config.task == .superResolution ? "rows: bicubic upsampling, model, original"
                                                          : "rows: masked input, inpainted, original"
        reporter.image("samples (\(rows))", file: url, step: step)
        reporter.say(String(format: "samples: %@ (%@; %d held-out images, %@ %d steps, %.1f s)", url.path, rows, columns,
                            s.sampler, s.steps, ProgressReporter.now() - started))
    }
}
