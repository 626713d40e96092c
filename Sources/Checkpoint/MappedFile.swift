import Foundation

/// A whole file mapped read-only into memory.
///
/// Checkpoints can be gigabytes: mapping lets the reader convert each tensor straight from the
/// page cache into its Float32 storage, touching every byte once, with no intermediate copy of
/// the file. The mapping lives as long as this object.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let count: Int
    private let base: UnsafeMutableRawPointer?

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileError.posix("open", path: path) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw FileError.posix("stat", path: path) }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw FileError("read", path: path, detail: "not a regular file")
        }
        count = Int(info.st_size)
        if count == 0 {
            base = nil   // mmap rejects empty mappings; there is nothing to read anyway
            return
        }
        guard let mapped = mmap(nil, count, PROT_READ, MAP_PRIVATE, fd, 0), mapped != MAP_FAILED else {
            throw FileError.posix("mmap", path: path)
        }
        base = mapped
    }

    deinit {
        if let base { munmap(base, count) }
    }

    /// The file's bytes. Valid while this object is alive.
    public var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base.map { UnsafeRawPointer($0) }, count: count)
    }
}
