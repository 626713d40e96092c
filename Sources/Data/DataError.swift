import Foundation

/// Bad input data, always naming the file at fault.
public enum DataError: Error, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case unwritable(path: String, reason: String)
    case malformed(path: String, reason: String)
    case mismatch(path: String, reason: String)
    case empty(path: String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let p, let r): return "cannot read \(p): \(r)"
        case .unwritable(let p, let r): return "cannot write \(p): \(r)"
        case .malformed(let p, let r): return "\(p) is malformed: \(r)"
        case .mismatch(let p, let r): return "\(p): \(r)"
        case .empty(let p, let r): return "\(p): \(r)"
        }
    }
}
