import Foundation
import Tensor

// Float32 tensors are copied as raw bytes in both directions.
#if !_endian(little)
#error("safetensors I/O copies Float32 data as-is and needs a little-endian host")
#endif

/// The safetensors format (https://huggingface.co/docs/safetensors): an 8-byte little-endian
/// header length N, N bytes of JSON header, then the tensors' bytes, little-endian and
/// row-major, at offsets relative to the end of the header.
public enum SafeTensors {
    /// Maps `url` and validates its header against the file size. Tensor bytes are converted
    /// only when asked for, straight from the mapping.
    public static func read(_ url: URL) throws -> SafeTensorsFile {
        try SafeTensorsFile(url: url)
    }
}

/// An open safetensors file: its header, and tensors converted to Float32 on request.
public final class SafeTensorsFile: @unchecked Sendable {
    public let url: URL
    public let metadata: [String: String]
    public let entries: [String: SafeTensorsEntry]
    /// Tensor names in byte-wise order.
    public let names: [String]

    private let file: MappedFile
    /// Offset of the data buffer from the start of the file.
    private let dataStart: Int

    init(url: URL) throws {
        self.url = url
        let path = url.path
        file = try MappedFile(path: path)
        let bytes = file.bytes
        guard bytes.count >= 8 else { throw SafeTensorsError(file: path, .fileTooShort(fileSize: bytes.count)) }
        let headerLength = UInt64(littleEndian: bytes.baseAddress!.loadUnaligned(as: UInt64.self))
        guard headerLength <= UInt64(bytes.count - 8) else {
            throw SafeTensorsError(file: path, .headerLengthExceedsFile(headerLength: headerLength, fileSize: bytes.count))
        }
        guard headerLength <= UInt64(SafeTensorsHeader.maximumLength) else {
            throw SafeTensorsError(file: path, .headerTooLarge(headerLength: headerLength, limit: SafeTensorsHeader.maximumLength))
        }
        dataStart = 8 + Int(headerLength)
        let header = try SafeTensorsHeader.parse(UnsafeRawBufferPointer(rebasing: bytes[8..<dataStart]),
                                                 bufferLength: bytes.count - dataStart, file: path)
        entries = header.entries
        metadata = header.metadata
        names = header.entries.keys.sorted(by: SafeTensorsHeader.utf8Less)
    }

    public func contains(_ name: String) -> Bool { entries[name] != nil }

    public func entry(named name: String) throws -> SafeTensorsEntry {
        guard let entry = entries[name] else {
            throw SafeTensorsError(file: url.path, key: name,
                                   .missingKey(available: entries.count, similar: similarNames(to: name)))
        }
        return entry
    }

    public func shape(of name: String) throws -> [Int] { try entry(named: name).shape }

    public func dtype(of name: String) throws -> SafeTensorsDType { try entry(named: name).dtype }

    /// The tensor `name` as Float32 (converted from F16, BF16 or F64 if stored so).
    public func tensor(named name: String) throws -> Tensor {
        let entry = try entry(named: name)
        guard entry.dtype.isReadableAsFloat32 else {
            throw SafeTensorsError(file: url.path, key: name, .unsupportedDType(entry.dtype))
        }
        let tensor = Tensor(uninitialized: entry.shape)
        let source = file.bytes.baseAddress! + dataStart + entry.dataRange.lowerBound
        let count = entry.elementCount
        switch entry.dtype {
        case .float32:
            UnsafeMutableRawPointer(tensor.pointer).copyMemory(from: source, byteCount: 4 * count)
        case .float16:
            HalfPrecision.decodeFloat16(source, into: tensor.pointer, count: count)
        case .bfloat16:
            HalfPrecision.decodeBFloat16(source, into: tensor.pointer, count: count)
        case .float64:
            for i in 0..<count {
                let bits = UInt64(littleEndian: source.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))
                tensor.pointer[i] = Float(Double(bitPattern: bits))
            }
        default:
            preconditionFailure("dtype \(entry.dtype) passed isReadableAsFloat32 but has no conversion")
        }
        return tensor
    }

    /// The tensor `name`, which must have shape `expectedShape` (checked before converting).
    public func tensor(named name: String, expectedShape: [Int]) throws -> Tensor {
        let actual = try shape(of: name)
        guard actual == expectedShape else {
            throw SafeTensorsError(file: url.path, key: name, .shapeMismatch(expected: expectedShape, actual: actual))
        }
        return try tensor(named: name)
    }

    /// Every tensor in the file, converted to Float32.
    public func allTensors() throws -> [String: Tensor] {
        var result: [String: Tensor] = [:]
        for name in names { result[name] = try tensor(named: name) }
        return result
    }

    /// Up to three names sharing the most trailing dotted components with `name` (at least two,
    /// so that "weight" alone does not match everything), to help spot a key-mapping slip.
    private func similarNames(to name: String) -> [String] {
        let wanted = Array(name.split(separator: ".").reversed())
        let needed = min(2, wanted.count)
        guard needed > 0 else { return [] }
        let scored: [(score: Int, name: String)] = names.compactMap { candidate in
            let parts = candidate.split(separator: ".").reversed()
            let score = zip(parts, wanted).prefix { $0 == $1 }.count
            return score >= needed ? (score, candidate) : nil
        }
        return scored.sorted { $0.score > $1.score || ($0.score == $1.score && $0.name < $1.name) }
            .prefix(3).map(\.name)
    }
}
