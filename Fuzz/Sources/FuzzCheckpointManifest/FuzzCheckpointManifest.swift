import Checkpoint
import FuzzSupport

/// A training checkpoint's commit marker of any bytes, opened as `--resume` does (which also
/// checks every listed file's presence and size inside the directory).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCheckpointManifest(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    _ = ScratchFile.write(data, size, name: TrainingCheckpointManifest.fileName)
    if let checkpoint = try? TrainingCheckpoint(directory: ScratchFile.directory) {
        try? checkpoint.verifyAll()
    }
    return 0
}
