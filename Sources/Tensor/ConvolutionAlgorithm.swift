import Foundation

/// How the oneDNN backend computes a convolution: Winograd F(4×4, 3×3) where oneDNN has it
/// and it pays, else the direct kernels; or direct everywhere. Chosen once per process from
/// `LDM_CONV_ALGORITHM` (winograd | direct; winograd when unset).
///
/// Winograd does a quarter of the multiplications on a 3×3 stride-1 convolution (36 per 4×4
/// output tile instead of 144) and runs in about half the time of the direct kernels on
/// AVX-512 (docs/PERFORMANCE.md), its transforms taking the rest. They round differently:
/// results differ from the direct kernels' by a few millionths of the output's largest
/// element (ConvolutionAlgorithmTests). `direct` runs the kernels PyTorch's
/// CPU convolutions run.
public enum ConvolutionAlgorithm: String, CaseIterable, Sendable {
    case winograd, direct

    public static let environmentVariable = "LDM_CONV_ALGORITHM"

    /// The process's choice. Tests swap it with `with(_:_:)`.
    nonisolated(unsafe) public private(set) static var current: ConvolutionAlgorithm = initial()

    /// Why `LDM_CONV_ALGORITHM` cannot be honoured, or nil when it can (or is unset).
    public static func environmentError() -> ComputeBackends.SelectionError? {
        guard let raw = ProcessInfo.processInfo.environment[environmentVariable], !raw.isEmpty,
              ConvolutionAlgorithm(rawValue: raw.lowercased()) == nil else { return nil }
        return ComputeBackends.SelectionError(
            description: "\(environmentVariable)=\(raw): unknown convolution algorithm; use one of "
                + allCases.map(\.rawValue).joined(separator: ", "))
    }

    static func initial() -> ConvolutionAlgorithm {
        if let error = environmentError() { fatalError(error.description) }
        let raw = ProcessInfo.processInfo.environment[environmentVariable]?.lowercased() ?? ""
        return ConvolutionAlgorithm(rawValue: raw) ?? .winograd
    }

    /// Whether Winograd is asked for on every 3×3 stride-1 shape rather than only where it
    /// pays: for measuring where it pays (`Benchmarks winograd`).
    nonisolated(unsafe) public private(set) static var onEveryShape = false

    /// Runs `body` asking for Winograd on every 3×3 stride-1 shape. For benchmarks.
    public static func withWinogradOnEveryShape<T>(_ body: () throws -> T) rethrows -> T {
        let saved = onEveryShape
        onEveryShape = true
        defer { onEveryShape = saved }
        return try with(.winograd, body)
    }

    /// Runs `body` with `algorithm`, then restores the previous one. For tests comparing the
    /// two; not thread-safe against concurrent kernels.
    public static func with<T>(_ algorithm: ConvolutionAlgorithm, _ body: () throws -> T) rethrows -> T {
        let saved = current
        current = algorithm
        defer { current = saved }
        return try body()
    }

    /// Whether to ask oneDNN for Winograd on this shape: where it ran faster than the direct
    /// kernels, forward and both gradients together, reorders included, on AVX-512
    /// (`Benchmarks winograd`, docs/PERFORMANCE.md). Its transforms cost more than they save
    /// on few channels (a latent's first convolution, 16 → 16), on maps smaller than its 4×4
    /// output tile (a UNet's 2×2 bottom: most of each tile is padding) and on fewer than 32
    /// tiles over the batch (a 4×4 map below batch 32, as in sampling): 1.0–3.3× the direct
    /// kernels' time there.
    func triesWinograd(_ geo: ConvGeometry) -> Bool {
        guard self == .winograd && geo.kernelHeight == 3 && geo.kernelWidth == 3 && geo.stride == 1 else { return false }
        let tiles = geo.batch * ((geo.outHeight + 3) / 4) * ((geo.outWidth + 3) / 4)
        return Self.onEveryShape
            || (geo.inChannels >= 16 && geo.inChannels + geo.outChannels >= 48
                && geo.outHeight >= 4 && geo.outWidth >= 4 && tiles >= 32)
    }
}
