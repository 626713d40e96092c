import FuzzSupport
import LatentCache

/// A latent-cache shard of any bytes, decoded as the reader does (header, zstd frame,
/// unshuffle, captions). Sizes come from the header, so this is where an allocation sized by
/// the file rather than by its length would show.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzLatentShard(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    _ = try? ShardCodec.decode(UnsafeRawBufferPointer(start: data, count: size), shard: "input.shard")
    return 0
}
