import Foundation

/// A multiplier on the (scaled) learning rate by step: optional linear warm-up from 0, then
/// constant or decaying to `min_factor` at `max_steps` (the `trainer.lr_schedule` section).
/// Without the section the rate is constant, as in the reference's first-stage training.
public struct LearningRateSchedule: Codable, Equatable, Sendable {
    public enum Decay: String, Codable, Sendable { case constant, cosine, linear }

    public var warmupSteps: Int = 0
    public var decay: Decay = .constant
    /// The factor reached at the last step.
    public var minFactor: Double = 0

    enum CodingKeys: String, CodingKey {
        case warmupSteps = "warmup_steps", decay, minFactor = "min_factor"
    }

    public init(warmupSteps: Int = 0, decay: Decay = .constant, minFactor: Double = 0) {
        self.warmupSteps = warmupSteps
        self.decay = decay
        self.minFactor = minFactor
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        warmupSteps = try c.decodeIfPresent(Int.self, forKey: .warmupSteps) ?? 0
        decay = try c.decodeIfPresent(Decay.self, forKey: .decay) ?? .constant
        minFactor = try c.decodeIfPresent(Double.self, forKey: .minFactor) ?? 0
    }

    /// The factor for the update taken at `step` (0-based) of a run of `totalSteps`.
    public func factor(step: Int, totalSteps: Int) -> Double {
        if step < warmupSteps { return Double(step + 1) / Double(warmupSteps) }
        let span = totalSteps - warmupSteps
        guard decay != .constant, span > 1 else { return 1 }
        let t = min(1, Double(step - warmupSteps) / Double(span - 1))
        let shape = decay == .cosine ? 0.5 * (1 + cos(Double.pi * t)) : 1 - t
        return minFactor + (1 - minFactor) * shape
    }

    public func validationErrors() -> [String] {
        var errors: [String] = []
        if warmupSteps < 0 { errors.append("trainer.lr_schedule.warmup_steps must not be negative") }
        if !(0...1).contains(minFactor) { errors.append("trainer.lr_schedule.min_factor must be in [0, 1]") }
        return errors
    }

    public var description: String {
        var parts: [String] = []
        if warmupSteps > 0 { parts.append("linear warm-up over \(warmupSteps) steps") }
        switch decay {
        case .constant: parts.append("then constant")
        case .cosine, .linear: parts.append("\(decay.rawValue) decay to \(minFactor)x at the last step")
        }
        return "learning rate schedule: " + parts.joined(separator: ", ")
    }
}
