import Foundation
import FuzzSupport
import Training

/// A checkpoint's trainer state of any bytes: as trainer_state.json (the run's record), and as
/// a rank's state (rank-RRRRR-of-WWWWW.json), decoded as resume decodes it, its generators
/// rebuilt, and resharded to another world size.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTrainerState(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(bytes: data, count: size)
    _ = try? JSONDecoder().decode(TrainingStateRecord.self, from: bytes)
    guard let state = try? JSONDecoder().decode(RankTrainingState.self, from: bytes) else { return 0 }
    for (key, generator) in state.generators { _ = try? generator.generator(file: "state.json", key: key) }
    _ = try? RankTrainingState.resharded([state], rank: 0, worldSize: 1, file: "state.json")
    _ = try? RankTrainingState.resharded([state], rank: 1, worldSize: 3, file: "state.json")
    return 0
}
