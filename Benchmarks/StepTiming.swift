import Foundation
import Tensor

/// One model's training step timed the way the side-by-side comparison reads it: the median
/// of several steps after warm-up (the first steps create oneDNN primitives and fill the
/// buffer pool), and the process's peak resident memory.
struct StepTiming {
    let secondsPerStep: Double
    let peakRSSMiB: Double

    /// `--profile` or LDM_PROFILE=1: one more step after the timed ones runs under the op
    /// profiler and its table is printed.
    nonisolated(unsafe) static var profile = OpProfiler.requestedByEnvironment

    static func measure(model: String, warmup: Int = 2, steps: Int = 5, _ step: () -> Void) -> StepTiming {
        for _ in 0..<warmup { step() }
        var times: [Double] = []
        for _ in 0..<steps {
            let start = DispatchTime.now().uptimeNanoseconds
            step()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        times.sort()
        if profile {
            print(OpProfiler.profile(step).table(title: "\(model) step profile"))
        }
        return StepTiming(secondsPerStep: times[times.count / 2],
                          peakRSSMiB: Double(MemoryUsage.peakResidentBytes) / 1_048_576)
    }

    /// The line `Benchmarks --json` collects from a model's own process.
    func jsonLine(model: String) -> String {
        String(format: "json %@: {\"sec_per_step\": %.4f, \"peak_rss_mib\": %.1f}", model, secondsPerStep, peakRSSMiB)
    }
}

/// `Benchmarks --json`: each model's step in its own process (so one model's peak memory is
/// not the other's), 2 threads unless LDM_NUM_THREADS says otherwise; the last line printed
/// is one JSON object {"unet": {...}, "autoencoder": {...}}.
enum SideBySideJSON {
    static let models = ["unet", "autoencoder"]

    static func run() {
        let environment = ProcessInfo.processInfo.environment
        let threads = environment["LDM_NUM_THREADS"] ?? "2"
        var parts: [String] = []
        for model in models {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
            process.arguments = [model]
            process.environment = environment.merging(["LDM_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads]) { $1 }
            let pipe = Pipe()
            process.standardOutput = pipe
            do { try process.run() } catch {
                FileHandle.standardError.write(Data("Benchmarks --json: cannot start \(model): \(error)\n".utf8))
                exit(1)
            }
            let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            let prefix = "json \(model): "
            guard process.terminationStatus == 0,
                  let line = output.split(separator: "\n").last(where: { $0.hasPrefix(prefix) }) else {
                FileHandle.standardError.write(Data("Benchmarks --json: \(model) failed (status \(process.terminationStatus)):\n\(output)\n".utf8))
                exit(1)
            }
            for l in output.split(separator: "\n") where !l.hasPrefix("json ") { print(l) }
            parts.append("\"\(model)\": \(line.dropFirst(prefix.count))")
        }
        print("{" + parts.joined(separator: ", ") + "}")
    }
}
