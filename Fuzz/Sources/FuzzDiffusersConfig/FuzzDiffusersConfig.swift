import Foundation
import FuzzSupport
import Models

/// A diffusers config.json of any bytes, translated as `import-unet` and `import-vae` do
/// (the JSON object first, then the translation, which refuses what it cannot map).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDiffusersConfig(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(bytes: data, count: size)
    guard let json = (try? JSONSerialization.jsonObject(with: bytes)) as? [String: Any] else { return 0 }
    if let unet = try? DiffusersUNet.unetConfig(fromDiffusersConfig: json, source: "config.json") {
        _ = DiffusersUNet.unsupportedReasons(unet)
        _ = try? DiffusersUNet.diffusersConfig(for: unet, sampleSize: DiffusersUNet.sampleSize(inDiffusersConfig: json))
    }
    if let vae = try? DiffusersVAE.autoencoderConfig(fromDiffusersConfig: json, source: "config.json") {
        _ = DiffusersVAE.unsupportedReasons(vae)
        _ = try? DiffusersVAE.diffusersConfig(for: vae, scalingFactor: 0.18215)
    }
    return 0
}
