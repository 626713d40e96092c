import Foundation

/// A checkpoint that cannot be written or resumed from, naming the directory and the file or
/// key at fault and, where there is one, what to do.
public struct TrainingCheckpointError: Error, CustomStringConvertible, LocalizedError {
    /// The checkpoint directory (or run directory) concerned.
    public let path: String
    /// The file inside it, when one file is at fault.
    public let file: String?
    public let message: String

    public init(path: String, file: String? = nil, _ message: String) {
        self.path = path
        self.file = file
        self.message = message
    }

    public var description: String {
        let location = file.map { (path as NSString).appendingPathComponent($0) } ?? path
        return "checkpoint \(location): \(message)"
    }

    public var errorDescription: String? { description }
}
