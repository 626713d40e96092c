import Tensor

/// Classifier-free guidance (Ho & Salimans): out = out_u + s·(out_c − out_u), with the
/// unconditional and conditional predictions computed in one doubled batch [uncond; cond]
/// as the reference's DDIM sampler does.
public enum ClassifierFreeGuidance {
    /// `doubled(x2, t2)` gets a batch of 2B: rows 0..<B are to be predicted unconditionally,
    /// rows B..<2B with the condition. A scale of 1 is the conditional prediction alone and
    /// costs one batch (`conditional` is called instead).
    public static func guided(scale: Float, conditional: @escaping DenoiserOutput,
                              doubled: @escaping DenoiserOutput) -> DenoiserOutput {
        if scale == 1 { return conditional }
        return { x, t in
            let b = x.shape[0]
            let out = doubled(Tensor.concatenate([x, x], alongAxis: 0), t + t)
            let uncond = out.slice(alongAxis: 0, 0..<b), cond = out.slice(alongAxis: 0, b..<2 * b)
            return uncond + (cond - uncond) * scale
        }
    }
}
