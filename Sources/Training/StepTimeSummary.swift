import Foundation

/// The `step time:` line printed at the end of every training run: how long the steps took
/// and the share of the weight update (gradient norm and clipping, optimiser steps, EMA),
/// the part of a step that does not shrink with the batch.
enum StepTimeSummary {
    static func line(steps: Int, seconds: Double, updateSeconds: Double) -> String {
        let perStep = steps > 0 ? String(format: "%.3f s a step", seconds / Double(steps)) : "no steps"
        return String(format: "step time: %d steps in %.3f s (%@); weight update (gradient norm and clipping, optimiser, EMA) %.3f s (%@)",
                      steps, seconds, perStep, updateSeconds, CommunicationSummary.percent(updateSeconds, of: seconds))
    }
}
