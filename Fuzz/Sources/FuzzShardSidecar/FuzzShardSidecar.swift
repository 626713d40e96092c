import FuzzSupport
import LatentCache

/// A shard's sidecar JSON of any bytes: read as a rerun does before deciding to skip a shard.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzShardSidecar(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let url = ScratchFile.write(data, size, name: "train-00000.shard.json")
    _ = ShardSidecar.read(url)
    return 0
}
