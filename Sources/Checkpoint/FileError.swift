import Foundation

/// A failed file-system call, with the path and the operation spelled out so that a message
/// like "cannot fsync '/ckpt/step_100/.model.safetensors.tmp-…': No space left on device" tells
/// the user what went wrong without a debugger.
public struct FileError: Error, CustomStringConvertible, LocalizedError, Equatable {
    /// What we were doing: "open", "write", "fsync", "rename", …
    public let operation: String
    public let path: String
    /// The POSIX errno, when the failure came from a system call.
    public let code: Int32?
    /// Extra explanation in plain words.
    public let detail: String?

    public init(_ operation: String, path: String, code: Int32? = nil, detail: String? = nil) {
        self.operation = operation
        self.path = path
        self.code = code
        self.detail = detail
    }

    /// Captures the current `errno`.
    static func posix(_ operation: String, path: String, detail: String? = nil) -> FileError {
        FileError(operation, path: path, code: errno, detail: detail)
    }

    public var description: String {
        var text = "cannot \(operation) '\(path)'"
        if let code { text += ": \(String(cString: strerror(code)))" }
        if let detail { text += " (\(detail))" }
        return text
    }

    public var errorDescription: String? { description }
}
