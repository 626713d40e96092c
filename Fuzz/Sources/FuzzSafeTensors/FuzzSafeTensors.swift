import Checkpoint
import FuzzSupport

/// A safetensors file of any bytes: the header is parsed and validated, and every tensor the
/// reader accepts is converted, so a header that passes validation must describe bytes that
/// are really there. Errors are fine; crashes, hangs and huge allocations are not.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafeTensors(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let url = ScratchFile.write(data, size, name: "input.safetensors")
    if let file = try? SafeTensors.read(url) {
        for name in file.names { _ = try? file.tensor(named: name) }
    }
    return 0
}
