import Foundation

/// GNU OpenMP reads its wait policy once, when the library loads, before any Swift code runs.
/// Its default has idle team threads spin for a few milliseconds before they sleep. On the
/// oneDNN backend that is what a step wants: the engine's loops, oneDNN's primitives and its
/// GEMM all run on OpenMP's one team, so a spinning thread is the next op's worker, ready.
/// On the OpenBLAS backend GEMMs run on OpenBLAS's own threads, which spinning OpenMP threads
/// would take the cores from (measured: a UNet step 1.3 s against 0.8–1.0 s passive), so
/// there the executables start themselves again with `OMP_WAIT_POLICY=passive`.
public enum OpenMPWaitPolicy {
    /// Re-executes this program with OMP_WAIT_POLICY=passive when `LDM_BACKEND=openblas`
    /// and the environment names no policy (any value is kept, so `OMP_WAIT_POLICY=active`
    /// still spins). Call first in main, before threads or files exist. Returns only when
    /// nothing needs doing or the exec failed (then the process carries on under OpenMP's
    /// default). The policy changes timing only, never results.
    public static func applyBackendDefault() {
        guard getenv("OMP_WAIT_POLICY") == nil, ComputeBackends.requestedName == "openblas" else { return }
        setenv("OMP_WAIT_POLICY", "passive", 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        unsetenv("OMP_WAIT_POLICY")
    }
}
