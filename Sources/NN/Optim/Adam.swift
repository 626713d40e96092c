import Tensor

/// torch.optim.Adam (L2 weight decay added to the gradient), single-tensor algorithm.
///
/// Parameters are given with their names so that the optimiser state can be saved and
/// restored by name. A parameter without a gradient is skipped and its step count does not
/// advance, as in torch. The learning rate may be changed before any step (schedules).
public class Adam {
    struct ParameterState {
        var step: Int
        let expAvg: Tensor
        let expAvgSq: Tensor
    }

    public let parameters: [(String, Tensor)]
    public var hyperparameters: AdamHyperparameters
    private var states: [ParameterState?]
    private let indexByName: [String: Int]

    public var learningRate: Double {
        get { hyperparameters.learningRate }
        set { hyperparameters.learningRate = newValue }
    }

    public convenience init(parameters: [(String, Tensor)], lr: Double = 1e-3, betas: (Double, Double) = (0.9, 0.999),
                            eps: Double = 1e-8, weightDecay: Double = 0) {
        self.init(parameters: parameters,
                  hyperparameters: AdamHyperparameters(learningRate: lr, beta1: betas.0, beta2: betas.1, eps: eps,
                                                       weightDecay: weightDecay, decoupledWeightDecay: false))
    }

    public init(parameters: [(String, Tensor)], hyperparameters: AdamHyperparameters) {
        let h = hyperparameters
        precondition(h.learningRate >= 0, "Adam: invalid learning rate \(h.learningRate)")
        precondition((0..<1).contains(h.beta1) && (0..<1).contains(h.beta2), "Adam: betas must be in [0, 1), got (\(h.beta1), \(h.beta2))")
        precondition(h.eps >= 0 && h.weightDecay >= 0, "Adam: eps \(h.eps) and weight decay \(h.weightDecay) must be ≥ 0")
        var index: [String: Int] = [:]
        for (i, (name, _)) in parameters.enumerated() {
            precondition(index.updateValue(i, forKey: name) == nil, "Adam: parameter name \(name) appears twice")
        }
        self.parameters = parameters
        self.hyperparameters = hyperparameters
        self.states = Array(repeating: nil, count: parameters.count)
        self.indexByName = index
    }

    /// One update of every parameter that has a gradient.
    public func step() {
        OpProfiler.measure(.other, "optimizer step") { update(gradientScale: 1, averaging: nil) }
    }

    /// The update of every parameter that has a gradient (of those at `indices`, all by
    /// default), its gradient multiplied by `gradientScale` first; with `averaging`, the
    /// shadows of the parameters stepped move in the same pass.
    func update(gradientScale: Float, averaging ema: ExponentialMovingAverage.Update?, indices: Range<Int>? = nil) {
        let h = hyperparameters
        for i in indices ?? parameters.indices {
            let (name, p) = parameters[i]
            guard let g = p.grad else { continue }
            precondition(g.shape == p.shape, "Adam: gradient \(g.shape) for parameter \(name) \(p.shape)")
            var state = states[i] ?? ParameterState(step: 0, expAvg: Tensor(zeros: p.shape), expAvgSq: Tensor(zeros: p.shape))
            state.step += 1
            let step = state.step
            let pp = p.pointer, gp = g.pointer, mp = state.expAvg.pointer, vp = state.expAvgSq.pointer
            let sp = ema?.takeShadow(of: p)?.pointer, weight = ema?.weight ?? 0
            Parallel.forRange(p.count, grain: 32768) { r in
                AdamKernel.updateVectorized(parameter: pp + r.lowerBound, gradient: gp + r.lowerBound,
                                            expAvg: mp + r.lowerBound, expAvgSq: vp + r.lowerBound,
                                            shadow: sp.map { $0 + r.lowerBound }, count: r.count, step: step, hyper: h,
                                            gradientScale: gradientScale, averagingWeight: weight)
            }
            states[i] = state
        }
    }

    /// Drops the gradients of all parameters.
    public func zeroGrad() { for (_, p) in parameters { p.zeroGrad() } }

    /// Moments by key "<parameter>.exp_avg" / "<parameter>.exp_avg_sq", for parameters
    /// updated at least once. Tensors are the optimiser's own (copy for a snapshot).
    public func stateDict() -> [String: Tensor] {
        var dict: [String: Tensor] = [:]
        for (i, (name, _)) in parameters.enumerated() {
            guard let s = states[i] else { continue }
            dict[name + ".exp_avg"] = s.expAvg
            dict[name + ".exp_avg_sq"] = s.expAvgSq
        }
        return dict
    }

    /// Updates applied so far, by parameter name (only parameters updated at least once).
    public func stepCounts() -> [String: Int] {
        var counts: [String: Int] = [:]
        for (i, (name, _)) in parameters.enumerated() {
            if let s = states[i] { counts[name] = s.step }
        }
        return counts
    }

    /// Restores state saved by `stateDict()` and `stepCounts()`; parameters absent from
    /// `stepCounts` start afresh. Throws, changing nothing, on unknown names, missing moments
    /// or shape mismatches.
    public func load(stateDict: [String: Tensor], stepCounts: [String: Int]) throws {
        var problems: [StateDictError.Problem] = []
        var newStates: [ParameterState?] = Array(repeating: nil, count: parameters.count)
        var used = Set<String>()
        for (name, step) in stepCounts.sorted(by: { $0.key < $1.key }) {
            guard let i = indexByName[name] else { problems.append(.unexpectedKey(name)); continue }
            let shape = parameters[i].1.shape
            var moments: [Tensor] = []
            for key in [name + ".exp_avg", name + ".exp_avg_sq"] {
                used.insert(key)
                guard let t = stateDict[key] else { problems.append(.missingKey(key)); continue }
                guard t.shape == shape else {
                    problems.append(.shapeMismatch(key: key, expected: shape, got: t.shape)); continue
                }
                moments.append(t.copy())
            }
            if moments.count == 2 && step > 0 {
                newStates[i] = ParameterState(step: step, expAvg: moments[0], expAvgSq: moments[1])
            }
        }
        problems += stateDict.keys.filter { !used.contains($0) }.sorted().map { .unexpectedKey($0) }
        guard problems.isEmpty else { throw StateDictError(problems: problems) }
        states = newStates
    }
}

/// torch.optim.AdamW: Adam with decoupled weight decay (default 0.01).
public final class AdamW: Adam {
    public convenience init(parameters: [(String, Tensor)], lr: Double = 1e-3, betas: (Double, Double) = (0.9, 0.999),
                            eps: Double = 1e-8, weightDecay: Double = 0.01) {
        self.init(parameters: parameters,
                  hyperparameters: AdamHyperparameters(learningRate: lr, beta1: betas.0, beta2: betas.1, eps: eps,
                                                       weightDecay: weightDecay, decoupledWeightDecay: true))
    }
}
