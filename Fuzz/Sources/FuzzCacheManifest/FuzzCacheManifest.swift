import FuzzSupport
import LatentCache

/// A latent cache's manifest.json of any bytes, read as `train-ldm` and `cache verify` do.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCacheManifest(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    _ = ScratchFile.write(data, size, name: LatentCacheManifest.fileName)
    _ = try? LatentCacheManifest.read(from: ScratchFile.directory)
    return 0
}
