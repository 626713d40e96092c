import Foundation

/// GNU OpenMP (oneDNN's threads) reads its wait policy once, when the library loads, before
/// any Swift code runs. Its default has idle team threads spin, which on a machine with as
/// many threads as cores takes the cores from the engine's own kernels (GCD) and OpenBLAS's
/// threads between primitives: measured, a UNet step several times slower. The executables
/// therefore start themselves again with `OMP_WAIT_POLICY=passive` when the user set none.
public enum OpenMPWaitPolicy {
    /// Re-executes this program with OMP_WAIT_POLICY=passive unless the environment already
    /// names a policy (any value, so `OMP_WAIT_POLICY=active` restores spinning). Call first
    /// in main, before threads or files exist. Returns only when nothing needs doing or the
    /// exec failed (then the process carries on under OpenMP's default).
    public static func applyPassiveDefault() {
        guard getenv("OMP_WAIT_POLICY") == nil else { return }
        setenv("OMP_WAIT_POLICY", "passive", 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        unsetenv("OMP_WAIT_POLICY")
    }
}
