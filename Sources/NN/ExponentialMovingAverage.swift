import CKernels
import Foundation
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
        beginUpdate(from: model).finish()
    }

    /// Counts one update and returns it unapplied, so an optimiser can move the shadows of the
    /// parameters it steps in the same pass (`Adam.clipAndStep`); `finish()` moves the rest.
    public func beginUpdate(from model: Module) -> Update {
        if usesUpdateCount { updateCount += 1 }
        return Update(weight: Float(1 - decay(afterUpdates: updateCount)), pairs: pairs(for: model))
    }

    /// Each shadow beside its parameter, and where each parameter is among them.
    struct Pairs {
        let pairs: [(parameter: Tensor, shadow: Tensor)]
        let index: [ObjectIdentifier: Int]
    }

    /// Each shadow beside its parameter in `model`. Kept for the last model seen, because
    /// finding parameters by name walks the module tree (Mirror), which costs more than the
    /// update itself on a large model; a model's parameters are the same tensors for its
    /// whole life (they are updated in place), as the optimiser relies on too.
    private func pairs(for model: Module) -> Pairs {
        if let cached = cachedPairs, cached.model === model { return cached.pairs }
        let params = parametersByName(model)
        let pairs = shadows.map { (parameter: params[$0.0]!, shadow: $0.1) }
        let made = Pairs(pairs: pairs, index: Dictionary(pairs.enumerated().map { (ObjectIdentifier($1.parameter), $0) },
                                                         uniquingKeysWith: { first, _ in first }))
        cachedPairs = (model, made)
        return made
    }
    private var cachedPairs: (model: Module, pairs: Pairs)?

    /// One update in progress: each tracked parameter's shadow moves once, by `weight`.
    public final class Update {
        /// 1 − decay of this update.
        public let weight: Float
        private let pairs: Pairs
        private var moved: [Bool]
        private var finished = false

        init(weight: Float, pairs: Pairs) {
            self.weight = weight
            self.pairs = pairs
            moved = Array(repeating: false, count: pairs.pairs.count)
        }

        /// The shadow of `parameter`, marked as moved by the caller (who must move it by
        /// `weight` right after writing the parameter's new value); nil when it is not tracked.
        public func takeShadow(of parameter: Tensor) -> Tensor? {
            precondition(!finished, "EMA update already finished")
            guard let i = pairs.index[ObjectIdentifier(parameter)], !moved[i] else { return nil }
            moved[i] = true
            return pairs.pairs[i].shadow
        }

        /// Moves every shadow not taken.
        public func finish() { finish(where: { _ in true }) }

        /// Moves the shadows not taken of `parameters` only: a rank's share of a sharded
        /// update, whose other shadows move on the ranks that own them.
        public func finish(movingOnly parameters: [Tensor]) {
            let mine = Set(parameters.map(ObjectIdentifier.init))
            finish(where: { mine.contains(ObjectIdentifier($0)) })
        }

        private func finish(where included: (Tensor) -> Bool) {
            precondition(!finished, "EMA update finished twice")
            finished = true
            let w = weight
            for (i, pair) in pairs.pairs.enumerated() where !moved[i] && included(pair.parameter) {
                let s = pair.shadow.pointer, q = pair.parameter.pointer
                Parallel.forRange(pair.shadow.count, grain: 32768) { r in
                    ldm_ema_update_f32(s + r.lowerBound, q + r.lowerBound, Int64(r.count), w)
                }
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

    /// The name LitEma gives a parameter's shadow buffer (dots removed, as torch buffer names
    /// cannot contain them): `model.diffusion_model.out.0.weight` → `modeldiffusion_modelout0weight`.
    /// The reference checkpoint stores it under `model_ema.` with `model_ema.decay` and
    /// `model_ema.num_updates` beside it.
    public static func referenceShadowName(for parameterName: String) -> String {
        parameterName.replacingOccurrences(of: ".", with: "")
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
