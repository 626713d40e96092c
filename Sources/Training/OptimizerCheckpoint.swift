import Checkpoint
import Foundation
import NN
import Tensor

/// An Adam/AdamW optimizer's state in a training checkpoint, sharded over ranks.
///
/// Every rank holds the whole state (data parallelism replicates it), but each writes only
/// its share of the parameters (`ShardAssignment.contiguous` by element count) to
/// `optimizer.<name>.rank-RRRRR-of-WWWWW.safetensors`: keys `<parameter>.exp_avg` and
/// `<parameter>.exp_avg_sq`, the step counts in the metadata. Loading reads every shard the
/// checkpoint lists and merges them, so the number of ranks that wrote it does not matter:
/// moments are per parameter.
public enum OptimizerCheckpoint {
    public static let stepCountsKey = "ldm.step_counts"
    public static let hyperparametersKey = "ldm.hyperparameters"

    public static func fileName(_ name: String, rank: Int, worldSize: Int) -> String {
        "optimizer.\(name).rank-\(RankTrainingState.pad(rank))-of-\(RankTrainingState.pad(worldSize)).safetensors"
    }

    /// Writes this rank's shard of `optimizer`'s state.
    public static func write(_ optimizer: Adam, name: String, writer: TrainingCheckpointWriter) throws {
        let rank = writer.communicator.rank, world = writer.communicator.size
        let mine = ShardAssignment.contiguous(elementCounts: optimizer.parameters.map { $0.1.count }, parts: world)[rank]
        let moments = optimizer.stateDict()
        let steps = optimizer.stepCounts()
        var tensors: [String: Tensor] = [:]
        var myCounts: [String: Int] = [:]
        for (parameter, _) in optimizer.parameters[mine] {
            guard let count = steps[parameter] else { continue }
            myCounts[parameter] = count
            tensors[parameter + ".exp_avg"] = moments[parameter + ".exp_avg"]
            tensors[parameter + ".exp_avg_sq"] = moments[parameter + ".exp_avg_sq"]
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let metadata = [
            stepCountsKey: String(decoding: try encoder.encode(myCounts), as: UTF8.self),
            hyperparametersKey: String(decoding: try encoder.encode(optimizer.hyperparameters), as: UTF8.self),
            "ldm.parameters": "\(mine.lowerBound)..<\(mine.upperBound) of \(optimizer.parameters.count)",
        ]
        try writer.writeTensors(fileName(name, rank: rank, worldSize: world), tensors, metadata: metadata)
    }

    /// Restores `optimizer` from every shard of `name` in `checkpoint`.
    public static func load(_ optimizer: Adam, name: String, from checkpoint: TrainingCheckpoint) throws {
        var moments: [String: Tensor] = [:]
        var steps: [String: Int] = [:]
        let world = checkpoint.worldSize
        for rank in 0..<world {
            let file = fileName(name, rank: rank, worldSize: world)
            let shard = try checkpoint.tensors(file)
            guard let json = shard.metadata[stepCountsKey],
                  let counts = try? JSONDecoder().decode([String: Int].self, from: Data(json.utf8)) else {
                throw TrainingCheckpointError(path: checkpoint.directory.path, file: file, "metadata \(stepCountsKey) missing or unreadable")
            }
            for (parameter, count) in counts {
                guard steps.updateValue(count, forKey: parameter) == nil else {
                    throw TrainingCheckpointError(path: checkpoint.directory.path, file: file,
                                                  "\(parameter): also in another shard of optimizer \(name)")
                }
            }
            for tensorName in shard.names { moments[tensorName] = try shard.tensor(named: tensorName) }
        }
        do {
            try optimizer.load(stateDict: moments, stepCounts: steps)
        } catch {
            throw TrainingCheckpointError(path: checkpoint.directory.path, file: fileName(name, rank: 0, worldSize: world)
                                          .replacingOccurrences(of: "rank-00000", with: "rank-*"),
                                          "optimizer \(name) does not fit the model: \(error)")
        }
    }
}
