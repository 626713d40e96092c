import Foundation

/// The readers under test take file paths, as users give them: each input is written to one
/// scratch file (in memory-backed /dev/shm when there is one) and read back through the real
/// entry point.
public enum ScratchFile {
    public static let directory: URL = {
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        let url = URL(fileURLWithPath: base).appendingPathComponent("ldm-fuzz-\(getpid())")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    /// Writes `size` bytes at `data` to `name` inside the scratch directory.
    public static func write(_ data: UnsafePointer<UInt8>, _ size: Int, name: String) -> URL {
        let url = directory.appendingPathComponent(name)
        let bytes = Data(bytes: data, count: size)
        do { try bytes.write(to: url) } catch { fatalError("fuzz scratch file \(url.path): \(error)") }
        return url
    }
}
