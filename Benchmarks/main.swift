import Foundation
import Tensor

// Performance of the engine's kernels; each figure is printed beside what it is compared with.
BenchmarkSuite.runAll(arguments: Array(CommandLine.arguments.dropFirst()))
