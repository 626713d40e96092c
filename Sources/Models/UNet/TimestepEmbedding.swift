import Foundation
import Tensor

/// Sinusoidal embedding of (possibly fractional) timesteps, [cos | sin] with frequencies
/// exp(−ln(max_period)·i/half), i < half, as the reference's `timestep_embedding`; an odd
/// width gets a zero last column. Computed in Float64, stored as Float32. [B] → [B, dim].
public func timestepEmbedding(_ timesteps: [Double], dimension: Int, maxPeriod: Double = 10000) -> Tensor {
    precondition(dimension > 0, "timestep embedding needs a positive width")
    let half = dimension / 2
    let out = Tensor(zeros: [timesteps.count, dimension])
    let o = out.pointer
    for (b, t) in timesteps.enumerated() {
        for i in 0..<half {
            let argument = t * exp(-log(maxPeriod) * Double(i) / Double(half))
            o[b * dimension + i] = Float(cos(argument))
            o[b * dimension + half + i] = Float(sin(argument))
        }
    }
    return out
}
