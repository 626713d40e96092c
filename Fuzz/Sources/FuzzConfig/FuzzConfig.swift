import FuzzSupport
import Training

/// A YAML config file of any bytes, loaded as each training command and the data section
/// loader load it.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let url = ScratchFile.write(data, size, name: "config.yaml")
    _ = try? ConfigLoader.load(AutoencoderTrainingConfig.self, from: url)
    _ = try? ConfigLoader.load(LDMTrainingConfig.self, from: url)
    _ = try? DataConfig.load(fromConfigFile: url)
    return 0
}
