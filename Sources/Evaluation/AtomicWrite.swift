import Foundation

/// Errors writing a file, naming it.
public enum FileWriteError: Error, CustomStringConvertible, Equatable {
    case system(path: String, operation: String, errno: Int32)

    public var description: String {
        switch self {
        case let .system(path, operation, code):
            return "\(operation) \(path) failed: \(String(cString: strerror(code)))"
        }
    }
}

/// Replaces a file's contents all at once: readers (and a crash) see either the old file or
/// the complete new one, never a torn write. The bytes go to a unique temporary name in the
/// same directory (rename is only atomic within one file system), are fsynced, and the
/// temporary is renamed over the target; the directory is fsynced so the rename persists.
public enum AtomicWrite {
    public static func write(_ data: Data, to url: URL) throws {
        let directory = url.deletingLastPathComponent().path
        let temporary = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UUID().uuidString)").path
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileWriteError.system(path: temporary, operation: "create", errno: errno) }
        var renamed = false
        defer { if !renamed { unlink(temporary) } }
        do {
            defer { close(fd) }
            try data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
                var offset = 0
                while offset < bytes.count {
                    let n = Foundation.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw FileWriteError.system(path: temporary, operation: "write", errno: errno)
                    }
                    offset += n
                }
            }
            guard fsync(fd) == 0 else { throw FileWriteError.system(path: temporary, operation: "fsync", errno: errno) }
        }
        guard rename(temporary, url.path) == 0 else {
            throw FileWriteError.system(path: url.path, operation: "rename \(temporary) to", errno: errno)
        }
        renamed = true
        let dirFD = open(directory, O_RDONLY | O_CLOEXEC)
        if dirFD >= 0 {
            fsync(dirFD)
            close(dirFD)
        }
    }
}
