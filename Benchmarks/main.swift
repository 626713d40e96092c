import Foundation
import Tensor

// Performance of the engine's kernels; each figure is printed beside what it is compared with.
// Runs under the same OpenMP wait policy as `ldm`.
OpenMPWaitPolicy.applyBackendDefault()
BenchmarkSuite.runAll(arguments: Array(CommandLine.arguments.dropFirst()))
