import ArgumentParser
import Foundation
import Training

/// `ldm plot RUN`: the run's logged curves as a PNG.
struct PlotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plot",
        abstract: "Draw a run's loss curves (metrics.jsonl, heldout.jsonl) to a PNG.")

    @Argument(help: ArgumentHelp("A run directory (trainer.run_dir).", valueName: "run"))
    var runDirectory: String

    @Option(name: .long, help: "Metrics to draw, comma-separated (default: all but the timing).")
    var metrics: String?

    @Option(name: .long, help: "The PNG to write (default: RUN/images/curves.png).")
    var out: String?

    func run() throws {
        let runURL = URL(fileURLWithPath: runDirectory)
        let outURL = URL(fileURLWithPath: out ?? runURL.appendingPathComponent("images/curves.png").path)
        try FileManager.default.createDirectory(at: outURL.deletingLastPathComponent(), withIntermediateDirectories: true)
        let drawn = try RunPlot.write(run: runURL, metrics: metrics.map { $0.split(separator: ",").map(String.init) }, to: outURL)
        print("plot: \(outURL.path) (\(drawn.joined(separator: ", ")), a panel each)")
    }
}
