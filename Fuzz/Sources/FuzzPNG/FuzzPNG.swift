import Data
import FuzzSupport

/// A PNG of any bytes, read as an image folder's files are (own colour type, grey, RGB).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPNG(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let url = ScratchFile.write(data, size, name: "input.png")
    for channels in [nil, 1, 3] as [Int?] { _ = try? PNG.read(url, channels: channels) }
    return 0
}
