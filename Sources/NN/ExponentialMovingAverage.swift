import Tensor

/// Exponential moving average of a model's trainable parameters (LitEma of the LDM
/// reference): shadow copies keyed by parameter name, updated after each optimiser step with
///   decay_n = min(decay, (1 + n) / (10 + n)),   n = number of updates so far, this one included
///   shadow -= (1 − decay_n) · (shadow − param)
/// Parameters that do not require gradients (frozen parts) are not tracked, as in LitEma.
public final class ExponentialMovingAverage {
    public let decay: Double
    /// Whether the warm-up schedule is used (LitEma's `use_num_upates`).
    public let usesUpdateCount: Bool
    public private(set) var updateCount: Int = 0
    /// Shadow values by parameter name, in the model's parameter order.
    public private(set) var shadows: [(String, Tensor)]
    private var stored: [Tensor]?

    public init(model: Module, decay: Double = 0.9999, usesUpdateCount: Bool = true) {
        precondition((0...1).contains(decay), "EMA decay must be in [0, 1], got \(decay)")
        self.decay = decay
        self.usesUpdateCount = usesUpdateCount
        shadows = model.namedParameters().filter { $0.1.requiresGrad }.map { ($0.0, $0.1.copy()) }
    }

    /// The decay the next update will use.
    public var nextDecay: Double { decay(afterUpdates: updateCount + 1) }

    /// The decay applied by update number `n` (1-based).
    public func decay(afterUpdates n: Int) -> Double {
        guard usesUpdateCount else { return decay }
        return min(decay, Double(1 + n) / Double(10 + n))
    }

    /// Moves every shadow towards the model's current parameters.
    public func update(from model: Module) {
        if usesUpdateCount { updateCount += 1 }
        let oneMinusDecay = Float(1 - decay(afterUpdates: updateCount))
        let params = parametersByName(model)
        for (name, shadow) in shadows {
            let p = params[name]!
            let s = shadow.pointer, q = p.pointer
            Parallel.forRange(shadow.count, grain: 32768) { r in
                for i in r { s[i] = s[i] - oneMinusDecay * (s[i] - q[i]) }
            }
        }
    }

    /// Writes the averaged values into the model's parameters.
    public func copy(to model: Module) {
        let params = parametersByName(model)
        for (name, shadow) in shadows { params[name]!.assign(shadow) }
    }

    /// Saves the model's current (trained) values so `restore(to:)` can bring them back
    /// after evaluating with the averaged ones.
    public func store(from model: Module) {
        let params = parametersByName(model)
        stored = shadows.map { params[$0.0]!.copy() }
    }

    /// Puts back the values saved by `store(from:)`.
    public func restore(to model: Module) {
        guard let stored else { preconditionFailure("EMA.restore(to:) without a matching store(from:)") }
        let params = parametersByName(model)
        for ((name, _), saved) in zip(shadows, stored) { params[name]!.assign(saved) }
        self.stored = nil
    }

    /// Runs `body` with the averaged weights in the model, then restores the trained ones.
    public func withAveragedWeights<T>(in model: Module, _ body: () throws -> T) rethrows -> T {
        store(from: model)
        copy(to: model)
        defer { restore(to: model) }
        return try body()
    }

    /// Shadow values by parameter name (the EMA's own tensors: copy for a snapshot).
    public func stateDict() -> [String: Tensor] {
        Dictionary(uniqueKeysWithValues: shadows)
    }

    /// Restores shadows and the update count; throws, changing nothing, if a tracked name is
    /// missing, unknown or has the wrong shape.
    public func load(stateDict: [String: Tensor], updateCount: Int) throws {
        var problems: [StateDictError.Problem] = []
        for (name, shadow) in shadows {
            guard let t = stateDict[name] else { problems.append(.missingKey(name)); continue }
            if t.shape != shadow.shape { problems.append(.shapeMismatch(key: name, expected: shadow.shape, got: t.shape)) }
        }
        let names = Set(shadows.map { $0.0 })
        problems += stateDict.keys.filter { !names.contains($0) }.sorted().map { .unexpectedKey($0) }
        guard problems.isEmpty else { throw StateDictError(problems: problems) }
        for (name, shadow) in shadows { shadow.assign(stateDict[name]!) }
        self.updateCount = updateCount
    }

    private func parametersByName(_ model: Module) -> [String: Tensor] {
        let params = Dictionary(model.namedParameters(), uniquingKeysWith: { first, _ in first })
        for (name, shadow) in shadows {
            guard let p = params[name] else { preconditionFailure("EMA: the model has no parameter \(name)") }
            precondition(p.shape == shadow.shape, "EMA: parameter \(name) is \(p.shape), shadow is \(shadow.shape)")
        }
        return params
    }
}
