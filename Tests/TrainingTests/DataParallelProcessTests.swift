import Checkpoint
import Distributed
import Foundation
import Tensor
import TestSupport
import XCTest
@testable import Training

/// Data parallelism through the `ldm` binary: two ranks under `mpirun -np 2` hold
/// bit-identical replicas, and train what one process trains on the same global batches.
/// Tiny model (ch 32, ch_mult [1, 2]) on 32×32 images, so the three-layer PatchGAN and its
/// BatchNorm layers run; the discriminator is on from step 0.
final class DataParallelProcessTests: XCTestCase {
    var tiny: TinyRun!

    override func setUpWithError() throws { tiny = try TinyRun() }
    override func tearDown() { tiny.remove() }

    static let steps = 4

    func yaml(run: String, batch: Int, syncBatchNorm: Bool = true, trainer extra: String = "") -> String {
        """
        model:
          base_learning_rate: 1.0e-4
          autoencoder: {ch: 64, ch_mult: [1, 2], num_res_blocks: 1, resolution: 32, in_channels: 1, out_ch: 1, z_channels: 4, embed_dim: 4}
          loss: {perceptual_weight: 0, disc_start: 0, disc_ndf: 16, kl_weight: 1.0e-6}
        data: {dataset: image-folder, path: \(tiny.images.path), channels: 1, resolution: 32, batch_size: \(batch)}
        trainer: {max_steps: \(Self.steps), log_every: 1, image_every: 1000, checkpoint_every: 2, run_dir: \(tiny.runDirectory(run).path), \
        seed: 7, sync_batchnorm: \(syncBatchNorm)\(extra)}

        """
    }

    func train(_ run: String, ranks: Int, batch: Int, syncBatchNorm: Bool = true, trainer extra: String = "",
               environment: [String: String] = [:]) throws -> ProcessOutcome {
        let config = try tiny.configFile("\(run).yaml", yaml(run: run, batch: batch, syncBatchNorm: syncBatchNorm, trainer: extra))
        return try Launcher.ldm(["train-autoencoder", "--config", config.path], ranks: ranks, environment: environment)
    }

    /// An unknown compute backend is a clear error naming the variable, not a crash.
    func testUnknownComputeBackendIsRefused() throws {
        let outcome = try train("bogus-backend", ranks: 1, batch: 2, environment: [ComputeBackends.environmentVariable: "bogus"])
        XCTAssertNotEqual(outcome.status, 0)
        XCTAssertFalse(outcome.killedBySignal, outcome.all)
        XCTAssertTrue(outcome.all.contains("LDM_BACKEND=bogus: unknown compute backend; use one of onednn, openblas"), outcome.all)
    }

    /// So is an unknown convolution algorithm.
    func testUnknownConvolutionAlgorithmIsRefused() throws {
        let outcome = try train("bogus-algorithm", ranks: 1, batch: 2, environment: [ConvolutionAlgorithm.environmentVariable: "fft"])
        XCTAssertNotEqual(outcome.status, 0)
        XCTAssertFalse(outcome.killedBySignal, outcome.all)
        XCTAssertTrue(outcome.all.contains("LDM_CONV_ALGORITHM=fft: unknown convolution algorithm; use one of winograd, direct"),
                      outcome.all)
    }

    /// So is an unknown allreduce transport.
    func testUnknownAllreduceTransportIsRefused() throws {
        let outcome = try train("bogus-transport", ranks: 1, batch: 2, environment: [AllreduceTransport.environmentVariable: "nccl"])
        XCTAssertNotEqual(outcome.status, 0)
        XCTAssertFalse(outcome.killedBySignal, outcome.all)
        XCTAssertTrue(outcome.all.contains("LDM_ALLREDUCE=nccl is not a transport; use one of auto, mpi"), outcome.all)
    }

    func assertSucceeded(_ outcome: ProcessOutcome, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(outcome.status, 0, outcome.all, file: file, line: line)
        XCTAssertFalse(outcome.killedBySignal, outcome.all, file: file, line: line)
    }

    /// Largest |a − b| over the tensors of a checkpoint file whose names pass `include`, and
    /// the tensor it is in.
    func maxDifference(_ file: String, _ a: String, _ b: String,
                       include: (String) -> Bool = { _ in true }) throws -> (value: Float, tensor: String, count: Int) {
        let ta = try TrainingCheckpoint(directory: tiny.checkpoint(a, step: Self.steps)).tensors(file)
        let tb = try TrainingCheckpoint(directory: tiny.checkpoint(b, step: Self.steps)).tensors(file)
        XCTAssertEqual(ta.names.sorted(), tb.names.sorted(), file)
        var worst: (Float, String) = (0, ""), count = 0
        for name in ta.names where include(name) {
            let x = try ta.tensor(named: name), y = try tb.tensor(named: name)
            XCTAssertEqual(x.shape, y.shape, name)
            for (u, v) in zip(x.scalars, y.scalars) {
                // A non-finite value is the largest difference there is (NaN compares false).
                let d = u.isFinite && v.isFinite ? abs(u - v) : .infinity
                if d > worst.0 { worst = (d, name) }
            }
            count += 1
        }
        return (worst.0, worst.1, count)
    }

    /// Attention key biases get a gradient of exactly zero (softmax ignores a shift shared by
    /// all keys), so in float they get rounding noise, and Adam, which divides by the
    /// gradient's own size, turns noise into steps of about lr: they follow no signal and do
    /// not change what the model computes.
    static func isGradientFree(_ name: String) -> Bool { name.hasSuffix("attn_1.k.bias") }

    /// On the direct convolution kernels: Winograd's rounding is a few millionths of a weight
    /// gradient's largest element, and Adam turns it into a step of ±lr on the elements whose
    /// gradient is smaller than that, which would hide a wrong reduction behind the tolerance.
    /// That Winograd's batch gradient is the sum of its parts is ConvolutionAlgorithmTests'.
    func testTwoRanksEqualOneProcessOnTheGlobalBatchWithIdenticalReplicas() throws {
        let direct = [ConvolutionAlgorithm.environmentVariable: ConvolutionAlgorithm.direct.rawValue]
        let two = try train("two", ranks: 2, batch: 2, environment: direct)
        assertSucceeded(two)
        XCTAssertTrue(two.stdout.contains("communication: \(Self.steps) steps"), two.stdout)
        let one = try train("one", ranks: 1, batch: 4, environment: direct)  // the world-size-1 path: no mpirun
        assertSucceeded(one)
        for run in [one, two] { XCTAssertTrue(run.stdout.contains("step time: \(Self.steps) steps in "), run.stdout) }
        XCTAssertFalse(one.stdout.contains("communication:"), one.stdout)

        // (i) Replicas: both ranks recorded the same digest of every parameter and buffer at
        // every checkpoint (the trainer verified it before writing), and it is the digest of
        // the weights rank 0 saved.
        for step in [2, Self.steps] {
            let checkpoint = try TrainingCheckpoint(directory: tiny.checkpoint("two", step: step))
            let ranks = try RankTrainingState.readAll(from: checkpoint)
            XCTAssertEqual(ranks.count, 2)
            let digests = ranks.map(\.parameterDigest)
            XCTAssertNotNil(digests[0])
            XCTAssertEqual(digests[0], digests[1], "step \(step)")
        }
        let config = try ConfigLoader.parse(AutoencoderTrainingConfig.self, yaml: yaml(run: "two", batch: 2))
        let reloaded = try AutoencoderTrainer.start(config: config, communicator: SingleProcessCommunicator(),
                                                    resume: tiny.checkpoint("two", step: Self.steps).path)
        let saved = try RankTrainingState.readAll(from: TrainingCheckpoint(directory: tiny.checkpoint("two", step: Self.steps)))
        XCTAssertEqual(XXH64.hexString(reloaded.replicaDigest), saved[0].parameterDigest)
        // The posterior noise generator is replicated, so it is the single process's too.
        let single = try RankTrainingState.readAll(from: TrainingCheckpoint(directory: tiny.checkpoint("one", step: Self.steps)))
        XCTAssertEqual(saved[0].generators[AutoencoderTrainer.noiseKey], single[0].generators[AutoencoderTrainer.noiseKey])
        XCTAssertEqual(saved[1].generators[AutoencoderTrainer.noiseKey], single[0].generators[AutoencoderTrainer.noiseKey])

        // (ii) Two ranks × 2 ≡ one process × 4, up to float rounding (sums in another order;
        // Adam divides by the gradient's size, so an element whose gradient is near zero turns
        // rounding into a visible part of a step): a tenth of one step at lr 4e-4, three orders
        // below what per-rank BatchNorm statistics give (the next test).
        let tolerance: Float = 4e-5
        let autoencoder = try maxDifference(AutoencoderTrainer.weightsFile, "two", "one") { !Self.isGradientFree($0) }
        let discriminator = try maxDifference(AutoencoderTrainer.discriminatorFile, "two", "one")
        let keyBiases = try maxDifference(AutoencoderTrainer.weightsFile, "two", "one", include: Self.isGradientFree)
        print("2 ranks vs 1 process after \(Self.steps) steps: autoencoder max |Δ| \(autoencoder.value) (\(autoencoder.tensor), "
            + "\(autoencoder.count) tensors), discriminator incl. BatchNorm buffers max |Δ| \(discriminator.value) "
            + "(\(discriminator.tensor), \(discriminator.count) tensors); gradient-free attention key biases max |Δ| "
            + "\(keyBiases.value) (\(keyBiases.count) tensors)")
        XCTAssertLessThanOrEqual(autoencoder.value, tolerance, autoencoder.tensor)
        XCTAssertLessThanOrEqual(discriminator.value, tolerance, discriminator.tensor)
        XCTAssertEqual(keyBiases.count, 2, "encoder and decoder mid-block attention")
        // lr = 1e-4 × 4 (global batch); Adam moves an element by at most a few lr per step.
        XCTAssertLessThanOrEqual(keyBiases.value, 3 * 4e-4 * Float(Self.steps))
        // Logged (rank-averaged) losses, d_weight included, agree step by step.
        let la = try loggedLosses(tiny.runDirectory("two")), lb = try loggedLosses(tiny.runDirectory("one"))
        XCTAssertEqual(la.count, Self.steps)
        XCTAssertEqual(la.map { $0["step"] }, lb.map { $0["step"] })
        for (a, b) in zip(la, lb) {
            for key in ["rec_loss", "kl_loss", "g_loss", "d_weight", "disc_loss", "logits_real", "logits_fake"] {
                let u = try XCTUnwrap(a[key], key), v = try XCTUnwrap(b[key], key)
                XCTAssertEqual(u, v, accuracy: 1e-4 * max(1, abs(v)), "\(key) at step \(a["step"] ?? -1)")
            }
        }
    }

    /// The gradient allreduce overlapped with backward and the blocking one (the default)
    /// after it train the same bits at two ranks, with two micro-batches per step (only the
    /// last one's backward reduces), the autoencoder's and the discriminator's buckets both.
    func testOverlappedAndBlockingAllreduceTrainTheSameBitsWithAccumulation() throws {
        let overlapped = try train("overlap", ranks: 2, batch: 2, trainer: ", accumulate_grad_batches: 2, overlap_allreduce: true")
        assertSucceeded(overlapped)
        XCTAssertTrue(overlapped.stdout.contains("allreduce overlapped with backward, waiting after it"), overlapped.stdout)
        let blocking = try train("blocking", ranks: 2, batch: 2, trainer: ", accumulate_grad_batches: 2")
        assertSucceeded(blocking)
        XCTAssertTrue(blocking.stdout.contains("allreduce after backward (not overlapped)"), blocking.stdout)
        for file in [AutoencoderTrainer.weightsFile, AutoencoderTrainer.discriminatorFile] {
            let a = try TrainingCheckpoint(directory: tiny.checkpoint("overlap", step: Self.steps)).tensors(file).allTensors()
            let b = try TrainingCheckpoint(directory: tiny.checkpoint("blocking", step: Self.steps)).tensors(file).allTensors()
            assertBitEqual(a.mapValues(\.scalars), b.mapValues(\.scalars), file)
            XCTAssertTrue(a.values.allSatisfy { $0.scalars.allSatisfy(\.isFinite) }, file)
        }
    }

    /// Per-rank BatchNorm statistics (DDP without SyncBatchNorm) are a different objective:
    /// the comparison above would fail by far more than its tolerance.
    func testPerRankBatchNormStatisticsDifferFromOneProcess() throws {
        assertSucceeded(try train("local", ranks: 2, batch: 2, syncBatchNorm: false))
        assertSucceeded(try train("one", ranks: 1, batch: 4))
        let discriminator = try maxDifference(AutoencoderTrainer.discriminatorFile, "local", "one")
        print("per-rank BatchNorm statistics vs 1 process: discriminator max |Δ| \(discriminator.value) (\(discriminator.tensor))")
        XCTAssertGreaterThan(discriminator.value, 1e-3)
    }

    /// A rank whose weights differ is caught at the checkpoint, named, and nothing is committed.
    func testDivergedReplicaStopsTheJobNamingTheRank() throws {
        let outcome = try train("diverged", ranks: 2, batch: 2, environment: [ReplicaDigest.perturbRankVariable: "1"])
        XCTAssertNotEqual(outcome.status, 0, outcome.all)
        XCTAssertTrue(outcome.stderr.contains("diverged at step 2: rank 1 holds"), outcome.stderr)
        XCTAssertEqual(TrainingCheckpointStore(runDirectory: tiny.runDirectory("diverged")).committed().count, 0)
    }
}

final class ReplicaDigestTests: XCTestCase {
    func testDivergedRanksAreTheOnesOutsideTheMajority() {
        XCTAssertEqual(ReplicaDigest.divergedRanks([5, 5, 5]), [])
        XCTAssertEqual(ReplicaDigest.divergedRanks([5, 6]), [1], "a tie keeps rank 0's")
        XCTAssertEqual(ReplicaDigest.divergedRanks([6, 5, 5, 5]), [0])
        XCTAssertEqual(ReplicaDigest.divergedRanks([5, 5, 7, 5]), [2])
        XCTAssertEqual(ReplicaDigest.divergedRanks([]), [])
    }

    func testDigestCoversEveryByteInOrder() {
        let a = Tensor(shape: [2], scalars: [1, 2]), b = Tensor(shape: [1], scalars: [3])
        let d = ReplicaDigest.digest([a, b])
        XCTAssertEqual(d, ReplicaDigest.digest([Tensor(shape: [2], scalars: [1, 2]), Tensor(shape: [1], scalars: [3])]))
        XCTAssertNotEqual(d, ReplicaDigest.digest([b, a]))
        XCTAssertNotEqual(d, ReplicaDigest.digest([a, Tensor(shape: [1], scalars: [Float(3).nextUp])]))
    }

    func testOneRankAlwaysAgrees() throws {
        XCTAssertNoThrow(try ReplicaDigest.verify(42, communicator: SingleProcessCommunicator(), step: 1))
    }
}
