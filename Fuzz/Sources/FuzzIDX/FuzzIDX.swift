import Data
import FuzzSupport

/// An IDX file (plain or gzip) of any bytes, read as the Fashion-MNIST loader does.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzIDX(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let url = ScratchFile.write(data, size, name: "input-idx3-ubyte.gz")
    _ = try? IDXFile(contentsOf: url)
    return 0
}
