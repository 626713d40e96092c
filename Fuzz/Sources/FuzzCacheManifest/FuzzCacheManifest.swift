import FuzzSupport
import LatentCache

/// A latent cache's manifest.json of any bytes, read as `train-ldm` and `cache verify` do.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCacheManifest(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    _ = ScratchFile.write(data, size, name: LatentCacheManifest.fileName)
    // What a reader derives from the manifest first: the floats per latent, each split's shards.
    if let manifest = try? LatentCacheManifest.read(from: ScratchFile.directory) {
        _ = manifest.latentSize
        for split in manifest.splits { _ = manifest.shards(of: split.name) }
    }
    return 0
}
