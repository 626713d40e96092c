import Foundation

/// The kernels that dominate a training step, behind one seam: GEMM and 2-D convolution
/// (forward, gradients of input, weight and bias). Everything above sees NCHW tensors.
protocol ComputeBackend: AnyObject, Sendable {
    /// What the run header prints and trainer state records ("onednn", "openblas").
    var name: String { get }
    /// The name with what the library picked on this machine (ISA, threads).
    var summary: String { get }

    /// C[m×n] = alpha · op(A) · op(B) + beta · C, row-major.
    func sgemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
               a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
               beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int)

    /// Returns what the backend keeps for this call's backward when `keepForBackward` (e.g. the
    /// input already in the layout its weight gradient reads), or nil. The weight is read
    /// through `layouts` when one is given (a backend that reorders weights keeps them there).
    func conv2dForward(_ geo: ConvGeometry, input: UnsafePointer<Float>, weight: Tensor,
                       bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>,
                       keepForBackward: Bool, layouts: WeightLayoutCache?) -> AnyObject?

    /// `saved` is what the forward returned (a backend ignores what it did not make);
    /// `layouts` the forward's.
    func conv2dBackward(_ geo: ConvGeometry, input: Tensor, weight: Tensor, gradOutput: Tensor, saved: AnyObject?,
                        needInput: Bool, needWeight: Bool, needBias: Bool,
                        layouts: WeightLayoutCache?) -> Conv2dKernels.Gradients
}

/// The backend a process computes with: chosen once, from `LDM_BACKEND` (openblas | onednn)
/// or else oneDNN where it runs on this machine, OpenBLAS otherwise.
public enum ComputeBackends {
    public static let environmentVariable = "LDM_BACKEND"
    public static let names = ["onednn", "openblas"]

    static let openBLAS = OpenBLASBackend()

    /// The process's backend. Tests swap it with `withBackend(_:_:)`.
    nonisolated(unsafe) static var current: ComputeBackend = initial()

    /// "onednn" or "openblas": recorded in trainer state.
    public static var currentName: String { current.name }
    /// For the run header, e.g. "onednn (jit:avx512_core, 2 threads)".
    public static var currentSummary: String { current.summary }

    public struct SelectionError: Error, CustomStringConvertible {
        public let description: String
    }

    /// The backend `LDM_BACKEND` names, lowercased (nil when unset).
    public static var requestedName: String? { ProcessInfo.processInfo.environment[environmentVariable]?.lowercased() }

    /// Why `LDM_BACKEND` cannot be honoured, or nil when it can (or is unset).
    public static func environmentError() -> SelectionError? {
        switch requestedName {
        case nil, "", "openblas": return nil
        case "onednn":
            return oneDNNAvailable ? nil
                : SelectionError(description: "\(environmentVariable)=onednn: oneDNN could not create a CPU engine on this machine")
        case let other?:
            return SelectionError(description: "\(environmentVariable)=\(other): unknown compute backend; use one of "
                                  + names.joined(separator: ", "))
        }
    }

    /// Throws the clear error for a bad `LDM_BACKEND` or `LDM_CONV_ALGORITHM` (commands call it
    /// before any work).
    public static func validateEnvironment() throws {
        if let error = environmentError() ?? ConvolutionAlgorithm.environmentError() { throw error }
    }

    static func initial() -> ComputeBackend {
        if let error = environmentError() { fatalError(error.description) }
        if requestedName == "openblas" { return openBLAS }
        return OneDNNBackend.shared ?? openBLAS
    }

    /// Runs `body` with backend `name` ("openblas" or "onednn"), then restores the previous
    /// one. For tests comparing the two; not thread-safe against concurrent kernels.
    public static func withBackend<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
        let backend: ComputeBackend
        switch name {
        case "openblas": backend = openBLAS
        case "onednn":
            guard let dnnl = OneDNNBackend.shared else { preconditionFailure("oneDNN is not available on this machine") }
            backend = dnnl
        default: preconditionFailure("unknown compute backend \(name)")
        }
        let previous = current
        current = backend
        defer { current = previous }
        return try body()
    }

    /// Whether oneDNN runs here (it is linked; this checks that its CPU engine starts).
    public static var oneDNNAvailable: Bool { OneDNNBackend.shared != nil }
}
