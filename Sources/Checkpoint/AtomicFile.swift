import Foundation

/// Writes files so that a reader (or a resumed run after a crash) sees either the old complete
/// file or the new complete file, never a torn one.
///
/// The content goes to a hidden temporary file in the destination's directory
/// (`.name.tmp-<pid>-<random>`, same file system, so the rename cannot degrade into a copy), is
/// fsync'd, renamed over the destination, and then the directory is fsync'd so the rename
/// itself survives a power cut. On any error the temporary file is removed.
public enum AtomicFile {
    /// Atomically replaces (or creates) `url` with `data`.
    public static func write(_ data: Data, to url: URL) throws {
        try write(to: url) { try $0.write(data) }
    }

    /// Streams a file: `body` writes the content through the writer; when it returns the file
    /// is committed. If `body` throws, nothing at `url` changes and its error is rethrown.
    @discardableResult
    public static func write<Result>(to url: URL, _ body: (FileWriter) throws -> Result) throws -> Result {
        let destination = url.standardizedFileURL
        let directory = destination.deletingLastPathComponent()
        let temporary = temporaryURL(for: destination)

        let fd = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT || code == ENOTDIR {
                throw FileError("create a file in", path: directory.path, code: code,
                                detail: "the directory for '\(destination.path)' does not exist")
            }
            throw FileError("create temporary file", path: temporary.path, code: code,
                            detail: "while writing '\(destination.path)'")
        }

        let writer = FileWriter(descriptor: fd, path: temporary.path)
        var committed = false
        defer {
            if !committed {
                writer.closeIgnoringErrors()
                unlink(temporary.path)
            }
        }

        let result = try body(writer)
        try writer.synchronize()
        try writer.close()
        guard rename(temporary.path, destination.path) == 0 else {
            throw FileError.posix("rename", path: temporary.path, detail: "to '\(destination.path)'")
        }
        committed = true
        try syncDirectory(at: directory)
        return result
    }

    /// Flushes a directory's entries (new names, renames, removals) to stable storage.
    public static func syncDirectory(at url: URL) throws {
        let path = url.path
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw FileError.posix("open directory", path: path) }
        defer { close(fd) }
        // Some file systems cannot fsync a directory (EINVAL); their renames are still ordered.
        guard fsync(fd) == 0 || errno == EINVAL else { throw FileError.posix("fsync directory", path: path) }
    }

    /// The hidden sibling a write to `url` goes through before the rename.
    static func temporaryURL(for url: URL) -> URL {
        let name = url.lastPathComponent
        let suffix = String(UInt32.random(in: .min ... .max), radix: 16)
        return url.deletingLastPathComponent()
            .appendingPathComponent(".\(name).tmp-\(getpid())-\(suffix)")
    }

    /// Whether `name` is one of our temporary names (for cleaning up after a crash).
    public static func isTemporaryName(_ name: String) -> Bool {
        name.hasPrefix(".") && name.contains(".tmp-")
    }
}

/// A write-only file descriptor that writes every byte it is given or throws.
public final class FileWriter {
    public let path: String
    public private(set) var bytesWritten = 0
    private var descriptor: Int32

    init(descriptor: Int32, path: String) {
        self.descriptor = descriptor
        self.path = path
    }

    deinit { closeIgnoringErrors() }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard var p = bytes.baseAddress else { return }
        var remaining = bytes.count
        while remaining > 0 {
            let n = systemWrite(descriptor, p, remaining)
            if n < 0 {
                if errno == EINTR { continue }
                throw FileError.posix("write", path: path, detail: "after \(bytesWritten) bytes")
            }
            p += n
            remaining -= n
            bytesWritten += n
        }
    }

    public func write(_ data: Data) throws {
        try data.withUnsafeBytes { try write($0) }
    }

    /// Writes the raw bytes of a contiguous array of trivial values.
    public func write<Element>(contentsOf values: UnsafeBufferPointer<Element>) throws {
        try write(UnsafeRawBufferPointer(values))
    }

    func synchronize() throws {
        guard fsync(descriptor) == 0 else { throw FileError.posix("fsync", path: path) }
    }

    func close() throws {
        let fd = descriptor
        descriptor = -1
        guard systemClose(fd) == 0 else { throw FileError.posix("close", path: path) }
    }

    func closeIgnoringErrors() {
        if descriptor >= 0 { _ = systemClose(descriptor); descriptor = -1 }
    }
}

// The POSIX calls, reachable from inside `FileWriter` whose methods shadow their names.
private func systemWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ count: Int) -> Int { write(fd, p, count) }
private func systemClose(_ fd: Int32) -> Int32 { close(fd) }
