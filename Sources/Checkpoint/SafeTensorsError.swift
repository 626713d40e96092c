import Foundation

/// A safetensors file (or a request against one) that cannot be honoured. The description names
/// the file and, where one is involved, the tensor key, e.g.
/// `model.safetensors: tensor 'encoder.conv_in.weight': data_offsets [0, 96] hold 96 bytes,
/// but shape [8, 3] of F32 needs 96…`.
public struct SafeTensorsError: Error, CustomStringConvertible, LocalizedError, Equatable {
    public enum Kind: Equatable, Sendable {
        /// Fewer than the 8 bytes of the header-length prefix.
        case fileTooShort(fileSize: Int)
        /// The prefix announces a header longer than the rest of the file.
        case headerLengthExceedsFile(headerLength: UInt64, fileSize: Int)
        /// The header bytes are not UTF-8 JSON.
        case headerNotJSON(reason: String)
        /// The header is JSON but not an object.
        case headerNotAnObject
        /// An entry lacks dtype/shape/data_offsets or has values of the wrong type.
        case invalidEntry(reason: String)
        /// `__metadata__` is not an object of strings.
        case invalidMetadata(reason: String)
        /// A dtype string this reader does not know.
        case unknownDType(String)
        /// A known dtype that cannot be converted to (or written from) Float32.
        case unsupportedDType(SafeTensorsDType)
        /// `data_offsets` with begin > end, or past the end of the data while the layout is not
        /// a contiguous one that was simply cut short.
        case dataOffsetsOutOfBounds(begin: Int, end: Int, bufferLength: Int)
        /// The byte range's length disagrees with shape × dtype size.
        case dataSizeMismatch(shape: [Int], dtype: SafeTensorsDType, expectedBytes: Int, actualBytes: Int)
        /// Two tensors claim the same bytes.
        case overlappingData(otherKey: String)
        /// A tensor starts after the end of the one before it (in offset order): bytes nobody owns.
        case gapBeforeData(begin: Int, expectedBegin: Int)
        /// The tensors end before the file does: the header length or the offsets are wrong.
        case notFullyCovered(coveredBytes: Int, bufferLength: Int)
        /// The header-length prefix is beyond the format's limit (not a safetensors file?).
        case headerTooLarge(headerLength: UInt64, limit: Int)
        /// The header describes a well-formed layout that the file ends before.
        case truncated(expectedBufferLength: Int, actualBufferLength: Int)
        /// A requested tensor is not in the file; `similar` lists names sharing its last component.
        case missingKey(available: Int, similar: [String])
        /// A tensor's shape differs from the caller's expectation.
        case shapeMismatch(expected: [Int], actual: [Int])
        /// Writing: a name the format reserves, or a tensor that cannot be written.
        case invalidName
    }

    public let file: String
    public let key: String?
    public let kind: Kind

    public init(file: String, key: String? = nil, _ kind: Kind) {
        self.file = file
        self.key = key
        self.kind = kind
    }

    public var description: String {
        var text = file + ": "
        if let key { text += "tensor '\(key)': " }
        switch kind {
        case .fileTooShort(let size):
            text += "file is \(size) bytes, too short for the 8-byte header length (not a safetensors file?)"
        case .headerLengthExceedsFile(let length, let size):
            text += "header length \(length) exceeds the file size \(size) (not a safetensors file, or truncated)"
        case .headerNotJSON(let reason):
            text += "header is not valid JSON: \(reason)"
        case .headerNotAnObject:
            text += "header is JSON but not an object"
        case .invalidEntry(let reason):
            text += "invalid header entry: \(reason)"
        case .invalidMetadata(let reason):
            text += "invalid __metadata__: \(reason)"
        case .unknownDType(let name):
            let known = SafeTensorsDType.allCases.map(\.rawValue).joined(separator: ", ")
            text += "unknown dtype '\(name)' (known: \(known))"
        case .unsupportedDType(let dtype):
            text += "dtype \(dtype.rawValue) is not supported here (reading converts F32, F16, BF16, F64 to Float32; "
                + "writing produces F32, F16, BF16)"
        case .dataOffsetsOutOfBounds(let begin, let end, let length):
            text += "data_offsets [\(begin), \(end)] are not a byte range within the \(length)-byte data buffer"
        case .dataSizeMismatch(let shape, let dtype, let expected, let actual):
            text += "data_offsets hold \(actual) bytes, but shape \(shape) of \(dtype.rawValue) needs \(expected)"
        case .overlappingData(let other):
            text += "data overlaps that of tensor '\(other)'"
        case .gapBeforeData(let begin, let expected):
            text += "data starts at offset \(begin), but the tensor before it ends at \(expected) "
                + "(tensors must be packed with no gap)"
        case .notFullyCovered(let covered, let length):
            text += "file not fully covered: the tensors hold \(covered) bytes but \(length) follow the header "
                + "(wrong header length or data_offsets; refusing to read shifted data)"
        case .headerTooLarge(let length, let limit):
            text += "header length \(length) exceeds the format's limit of \(limit) bytes (not a safetensors file?)"
        case .truncated(let expected, let actual):
            text += "file is truncated: the header describes \(expected) bytes of tensor data, only \(actual) are present"
        case .missingKey(let available, let similar):
            text += "no such tensor in the file (it has \(available) tensors)"
            if !similar.isEmpty { text += "; similar names: " + similar.joined(separator: ", ") }
        case .shapeMismatch(let expected, let actual):
            text += "shape is \(actual), expected \(expected)"
        case .invalidName:
            text += "'__metadata__' is reserved by the format and cannot name a tensor"
        }
        return text
    }

    public var errorDescription: String? { description }
}
