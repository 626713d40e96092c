import Foundation
import XCTest
@testable import Tensor

/// Participants of an in-process synchronised batch norm, one thread each: `reducer(rank)`
/// sums a Double buffer over all of them, as an allreduce across data-parallel ranks would.
private final class SummingGroup: @unchecked Sendable {
    let size: Int
    private let condition = NSCondition()
    private var contributions: [[Double]?]
    private var arrived = 0, generation = 0
    private var result: [Double] = []
    /// Calls per participant, to check that forward and backward reduce as documented.
    private(set) var calls: [Int]

    init(size: Int) {
        self.size = size
        contributions = Array(repeating: nil, count: size)
        calls = Array(repeating: 0, count: size)
    }

    func reducer(rank: Int) -> BatchNormStatisticsReducer {
        { [self] buffer in
            condition.lock()
            defer { condition.unlock() }
            calls[rank] += 1
            let myGeneration = generation
            contributions[rank] = Array(buffer)
            arrived += 1
            if arrived == size {
                // Summed in rank order, the same bits for everyone.
                result = contributions.dropFirst().reduce(contributions[0]!) { sum, next in zip(sum, next!).map(+) }
                contributions = Array(repeating: nil, count: size)
                arrived = 0
                generation += 1
                condition.broadcast()
            } else {
                while generation == myGeneration { condition.wait() }
            }
            precondition(result.count == buffer.count, "participants reduced buffers of different sizes")
            for i in buffer.indices { buffer[i] = result[i] }
        }
    }

    /// Runs `body(rank)` on one thread per participant and waits for all.
    func run(_ body: @escaping @Sendable (Int) -> Void) {
        let done = DispatchGroup()
        for r in 0..<size {
            done.enter()
            Thread { body(r); done.leave() }.start()
        }
        done.wait()
    }
}

/// Rank r's tensors, filled in by its thread.
private final class RankResults: @unchecked Sendable {
    var outputs: [Tensor?], inputGrads: [Tensor?], weightGrads: [Tensor?], biasGrads: [Tensor?]
    var runningMeans: [Tensor?], runningVars: [Tensor?]
    init(_ n: Int) {
        outputs = Array(repeating: nil, count: n); inputGrads = outputs; weightGrads = outputs; biasGrads = outputs
        runningMeans = outputs; runningVars = outputs
    }
}

final class SyncBatchNormTests: XCTestCase {
    /// Split [N, …] into `parts` contiguous slices along the batch, as ranks hold a global batch.
    func slices(_ t: Tensor, _ parts: Int) -> [Tensor] {
        let n = t.shape[0] / parts
        return (0..<parts).map { p in t.slice(alongAxis: 0, p * n..<(p + 1) * n).copy() }
    }

    /// Two participants with half the batch each, synchronised, give the full batch's outputs,
    /// running statistics and input gradients; their local weight and bias gradients sum to
    /// the full batch's.
    func testTwoWaySplitEqualsFullBatch() {
        let x = randn([6, 3, 5, 4], seed: 40, scale: 1.5) + 0.7, seed = randn([6, 3, 5, 4], seed: 41)
        let w = randn([3], seed: 42), b = randn([3], seed: 43)
        let mean0: [Float] = [0.5, -1, 2], var0: [Float] = [1, 2, 0.5]

        // Full batch, one process.
        let xf = x.copy(), wf = w.copy(), bf = b.copy()
        xf.requiresGrad = true; wf.requiresGrad = true; bf.requiresGrad = true
        let rmf = Tensor(shape: [3], scalars: mean0), rvf = Tensor(shape: [3], scalars: var0)
        let yf = xf.batchNorm(weight: wf, bias: bf, runningMean: rmf, runningVar: rvf, training: true, momentum: 0.1)
        (yf * seed).sum().backward()

        // Two participants; the loss of each is its own slice's, as on data-parallel ranks.
        let parts = 2, group = SummingGroup(size: parts), results = RankResults(parts)
        let xs = slices(x, parts), seeds = slices(seed, parts)
        let ws = (0..<parts).map { _ in w.copy() }, bs = (0..<parts).map { _ in b.copy() }
        for t in xs + ws + bs { t.requiresGrad = true }
        var losses = [Tensor?](repeating: nil, count: parts)
        group.run { r in
            let rm = Tensor(shape: [3], scalars: mean0), rv = Tensor(shape: [3], scalars: var0)
            let y = xs[r].batchNorm(weight: ws[r], bias: bs[r], runningMean: rm, runningVar: rv, training: true,
                                    momentum: 0.1, statisticsReducer: group.reducer(rank: r))
            results.outputs[r] = y
            results.runningMeans[r] = rm; results.runningVars[r] = rv
        }
        for r in 0..<parts { losses[r] = (results.outputs[r]! * seeds[r]).sum() }
        // The participants' backward passes meet in the reducer, so they run at once too. The
        // recording switch is global: held off around both, neither backward can flip it.
        let roots = losses.map { $0! }
        withoutGrad { group.run { r in roots[r].backward() } }
        for r in 0..<parts {
            results.inputGrads[r] = xs[r].grad; results.weightGrads[r] = ws[r].grad; results.biasGrads[r] = bs[r].grad
        }
        XCTAssertEqual(group.calls, [2, 2], "one reduction in forward, one in backward")
        let outputs = slices(yf, parts), inputGrads = slices(xf.grad!, parts)
        for r in 0..<parts {
            assertClose(results.outputs[r]!, outputs[r], atol: 1e-5)
            assertClose(results.inputGrads[r]!, inputGrads[r], atol: 1e-5)
            assertClose(results.runningMeans[r]!, rmf, atol: 1e-6)
            assertClose(results.runningVars[r]!, rvf, atol: 1e-6)
        }
        // Bit-identical statistics on both participants: same reduced sums, same arithmetic.
        XCTAssertEqual(results.runningMeans[0]!.scalars, results.runningMeans[1]!.scalars)
        XCTAssertEqual(results.runningVars[0]!.scalars, results.runningVars[1]!.scalars)
        assertClose(results.weightGrads[0]! + results.weightGrads[1]!, wf.grad!, atol: 1e-4)
        assertClose(results.biasGrads[0]! + results.biasGrads[1]!, bf.grad!, atol: 1e-4)

        // Without the reducer each half is normalised with its own statistics: different.
        let local = xs[0].batchNorm(weight: w, bias: b, runningMean: nil, runningVar: nil, training: true)
        XCTAssertGreaterThan(zip(local.scalars, outputs[0].scalars).map { abs($0 - $1) }.max()!, 1e-2)
    }

    /// Participants whose slices have far-apart means (a small spread inside each): the one
    /// reduction combines their statistics about the global mean, as the whole batch's.
    func testParticipantsWithFarApartMeansGiveTheWholeBatchStatistics() {
        let half = [3, 2, 4, 4]
        let x = Tensor.concatenate([randn(half, seed: 60, scale: 0.5) + 40, randn(half, seed: 61, scale: 2) - 25], alongAxis: 0)
        let rmf = Tensor(zeros: [2]), rvf = Tensor(repeating: 1, shape: [2])
        let full = x.batchNorm(weight: nil, bias: nil, runningMean: rmf, runningVar: rvf, training: true)
        let parts = 2, group = SummingGroup(size: parts), results = RankResults(parts)
        let xs = slices(x, parts)
        group.run { r in
            let rm = Tensor(zeros: [2]), rv = Tensor(repeating: 1, shape: [2])
            results.outputs[r] = xs[r].batchNorm(weight: nil, bias: nil, runningMean: rm, runningVar: rv, training: true,
                                                 statisticsReducer: group.reducer(rank: r))
            results.runningMeans[r] = rm; results.runningVars[r] = rv
        }
        XCTAssertEqual(group.calls, [1, 1])
        assertClose(Tensor.concatenate([results.outputs[0]!, results.outputs[1]!], alongAxis: 0), full, atol: 1e-5)
        for r in 0..<parts {
            assertClose(results.runningMeans[r]!, rmf, atol: 1e-5, rtol: 1e-6)
            assertClose(results.runningVars[r]!, rvf, atol: 1e-4, rtol: 1e-6)
        }
    }

    /// One participant: the reducer's code path is the plain batch norm, bit for bit, and its
    /// gradients match finite differences.
    func testSingleParticipantReducerIsPlainBatchNorm() {
        let x = randn([3, 2, 4], seed: 44), w = randn([2], seed: 45), b = randn([2], seed: 46)
        let alone = SummingGroup(size: 1).reducer(rank: 0)
        let plain = x.batchNorm(weight: w, bias: b, runningMean: nil, runningVar: nil, training: true)
        let reduced = x.batchNorm(weight: w, bias: b, runningMean: nil, runningVar: nil, training: true,
                                  statisticsReducer: alone)
        XCTAssertEqual(plain.scalars, reduced.scalars)
        assertGradientsMatch([x, w, b]) {
            $0[0].batchNorm(weight: $0[1], bias: $0[2], runningMean: nil, runningVar: nil, training: true,
                            statisticsReducer: alone)
        }
    }

    /// Evaluation with running statistics needs no collective.
    func testEvaluationDoesNotReduce() {
        let group = SummingGroup(size: 1)
        let x = randn([2, 3, 4], seed: 47)
        x.requiresGrad = true
        let y = x.batchNorm(weight: nil, bias: nil, runningMean: Tensor(zeros: [3]), runningVar: Tensor(repeating: 1, shape: [3]),
                            training: false, statisticsReducer: group.reducer(rank: 0))
        y.sum().backward()
        XCTAssertEqual(group.calls, [0])
    }

    /// The single-value check counts the values over all participants.
    func testOneValuePerParticipantIsEnoughWhenSynchronised() {
        let parts = 2, group = SummingGroup(size: parts), results = RankResults(parts)
        let x = randn([2, 3], seed: 48)
        let xs = slices(x, parts)
        group.run { r in
            results.outputs[r] = xs[r].batchNorm(weight: nil, bias: nil, runningMean: nil, runningVar: nil, training: true,
                                                 statisticsReducer: group.reducer(rank: r))
        }
        let full = x.batchNorm(weight: nil, bias: nil, runningMean: nil, runningVar: nil, training: true)
        assertClose(Tensor.concatenate([results.outputs[0]!, results.outputs[1]!], alongAxis: 0), full, atol: 1e-5)
    }
}
