import Foundation

/// One tensor's description in a safetensors header.
public struct SafeTensorsEntry: Equatable, Sendable {
    public let dtype: SafeTensorsDType
    public let shape: [Int]
    /// Byte range inside the data buffer that follows the header.
    public let dataRange: Range<Int>

    public var elementCount: Int { shape.reduce(1, *) }
}

/// The JSON header: parsing with full validation against the data buffer, and encoding in the
/// same byte layout as the reference implementation (compact JSON, fields in the order dtype,
/// shape, data_offsets; padded with spaces to a multiple of 8 bytes so the data that follows
/// the 8-byte length prefix starts 8-byte aligned).
struct SafeTensorsHeader {
    static let metadataKey = "__metadata__"
    /// The reference implementation's limit on the JSON header (100 MB).
    static let maximumLength = 100_000_000

    var entries: [String: SafeTensorsEntry]
    var metadata: [String: String]

    // MARK: Parsing

    /// Parses and validates `json` (the header bytes) for a data buffer of `bufferLength` bytes.
    /// `file` only names the file in errors.
    static func parse(_ json: UnsafeRawBufferPointer, bufferLength: Int, file: String) throws -> SafeTensorsHeader {
        let raw: RawHeader
        do {
            raw = try JSONDecoder().decode(RawHeader.self, from: Data(json))
        } catch let error as DecodingError {
            throw translate(error, file: file)
        }

        var entries: [String: SafeTensorsEntry] = [:]
        entries.reserveCapacity(raw.entries.count)
        // Sorted so that, of several bad entries, the same one is reported every time.
        for (name, rawEntry) in raw.entries.sorted(by: { utf8Less($0.0, $1.0) }) {
            entries[name] = try validate(rawEntry, name: name, bufferLength: bufferLength, file: file)
        }
        try checkLayout(entries, bufferLength: bufferLength, file: file)
        return SafeTensorsHeader(entries: entries, metadata: raw.metadata ?? [:])
    }

    private static func validate(_ raw: RawEntry, name: String, bufferLength: Int, file: String) throws -> SafeTensorsEntry {
        func fail(_ kind: SafeTensorsError.Kind) -> SafeTensorsError { SafeTensorsError(file: file, key: name, kind) }
        guard let dtype = SafeTensorsDType(rawValue: raw.dtype) else { throw fail(.unknownDType(raw.dtype)) }
        guard raw.shape.allSatisfy({ $0 >= 0 }) else {
            throw fail(.invalidEntry(reason: "negative dimension in shape \(raw.shape)"))
        }
        // Element count in shape order, then bytes, both overflow-checked (as the reference does),
        // so a zero dimension cannot hide a product of the others that does not fit.
        var elementCount = 1
        for dimension in raw.shape {
            let (product, overflow) = elementCount.multipliedReportingOverflow(by: dimension)
            guard !overflow else { throw fail(.invalidEntry(reason: "shape \(raw.shape) is too large")) }
            elementCount = product
        }
        let (byteCount, overflow) = elementCount.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow else { throw fail(.invalidEntry(reason: "shape \(raw.shape) is too large")) }
        guard raw.data_offsets.count == 2 else {
            throw fail(.invalidEntry(reason: "data_offsets must be [begin, end], got \(raw.data_offsets)"))
        }
        let begin = raw.data_offsets[0], end = raw.data_offsets[1]
        guard begin >= 0, begin <= end else {
            throw fail(.dataOffsetsOutOfBounds(begin: begin, end: end, bufferLength: bufferLength))
        }
        guard end - begin == byteCount else {
            throw fail(.dataSizeMismatch(shape: raw.shape, dtype: dtype, expectedBytes: byteCount, actualBytes: end - begin))
        }
        return SafeTensorsEntry(dtype: dtype, shape: raw.shape, dataRange: begin..<end)
    }

    /// Requires what the reference implementation requires: the tensors, ordered by offset,
    /// tile the data buffer exactly, from byte 0 to its end, with no gap and no overlap. A
    /// header length that is off by a few bytes (padding spaces keep the JSON valid) then shows
    /// as a buffer the tensors do not fully cover, instead of every tensor read shifted.
    ///
    /// Past the end of the buffer: a gap-free layout is reported as truncation (the writer was
    /// cut off), anything else as out-of-bounds offsets (the header is wrong).
    private static func checkLayout(_ entries: [String: SafeTensorsEntry], bufferLength: Int, file: String) throws {
        let ordered = entries.sorted {
            ($0.value.dataRange.lowerBound, $0.value.dataRange.upperBound, $0.key)
                < ($1.value.dataRange.lowerBound, $1.value.dataRange.upperBound, $1.key)
        }
        var reach = 0, reachOwner: String?
        var firstGap: (name: String, entry: SafeTensorsEntry, expectedBegin: Int)?
        for (name, entry) in ordered {
            if let owner = reachOwner, entry.dataRange.lowerBound < reach {
                throw SafeTensorsError(file: file, key: name, .overlappingData(otherKey: owner))
            }
            if entry.dataRange.lowerBound != reach, firstGap == nil { firstGap = (name, entry, reach) }
            reach = entry.dataRange.upperBound
            if !entry.dataRange.isEmpty { reachOwner = name }
        }
        if let (name, entry) = ordered.first(where: { $0.value.dataRange.upperBound > bufferLength }) {
            if firstGap == nil {
                throw SafeTensorsError(file: file, key: name, .truncated(expectedBufferLength: reach, actualBufferLength: bufferLength))
            }
            throw SafeTensorsError(file: file, key: name, .dataOffsetsOutOfBounds(
                begin: entry.dataRange.lowerBound, end: entry.dataRange.upperBound, bufferLength: bufferLength))
        }
        if let gap = firstGap {
            throw SafeTensorsError(file: file, key: gap.name, .gapBeforeData(
                begin: gap.entry.dataRange.lowerBound, expectedBegin: gap.expectedBegin))
        }
        guard reach == bufferLength else {
            throw SafeTensorsError(file: file, .notFullyCovered(coveredBytes: reach, bufferLength: bufferLength))
        }
    }

    private static func translate(_ error: DecodingError, file: String) -> SafeTensorsError {
        let context: DecodingError.Context
        var reason: String
        switch error {
        case .dataCorrupted(let c):
            context = c; reason = c.debugDescription
        case .typeMismatch(let type, let c):
            context = c; reason = "expected \(type)"
        case .valueNotFound(let type, let c):
            context = c; reason = "expected \(type), found null"
        case .keyNotFound(let key, let c):
            context = c; reason = "missing field '\(key.stringValue)'"
        @unknown default:
            return SafeTensorsError(file: file, .headerNotJSON(reason: "\(error)"))
        }
        let path = context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }
        guard let top = path.first else {
            if case .typeMismatch = error { return SafeTensorsError(file: file, .headerNotAnObject) }
            if let underlying = context.underlyingError { reason += ": \(underlying)" }
            return SafeTensorsError(file: file, .headerNotJSON(reason: reason))
        }
        if path.count > 1 { reason += " at " + path.dropFirst().joined(separator: ".") }
        if top == metadataKey {
            return SafeTensorsError(file: file, .invalidMetadata(reason: reason + " (values must be strings)"))
        }
        return SafeTensorsError(file: file, key: top, .invalidEntry(reason: reason))
    }

    // MARK: Encoding

    /// The header bytes (padded) for tensors already laid out in `entries` order.
    static func encode(entries: [(name: String, entry: SafeTensorsEntry)], metadata: [String: String]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(128 + 96 * entries.count)
        out.append(UInt8(ascii: "{"))
        var first = true
        func separator() {
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
        }
        if !metadata.isEmpty {
            separator()
            appendString(metadataKey, to: &out)
            out.append(contentsOf: Array(":{".utf8))
            for (index, key) in metadata.keys.sorted(by: utf8Less).enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                appendString(key, to: &out)
                out.append(UInt8(ascii: ":"))
                appendString(metadata[key]!, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
        for (name, entry) in entries {
            separator()
            appendString(name, to: &out)
            let shape = entry.shape.map(String.init).joined(separator: ",")
            let fields = ":{\"dtype\":\"\(entry.dtype.rawValue)\",\"shape\":[\(shape)],"
                + "\"data_offsets\":[\(entry.dataRange.lowerBound),\(entry.dataRange.upperBound)]}"
            out.append(contentsOf: Array(fields.utf8))
        }
        out.append(UInt8(ascii: "}"))
        let padding = (8 - out.count % 8) % 8
        out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: padding))
        return out
    }

    /// A JSON string literal, escaped like serde_json: quote, backslash and control characters.
    private static func appendString(_ string: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: Array("\\\"".utf8))
            case UInt8(ascii: "\\"): out.append(contentsOf: Array("\\\\".utf8))
            case 0x08: out.append(contentsOf: Array("\\b".utf8))
            case 0x0C: out.append(contentsOf: Array("\\f".utf8))
            case 0x0A: out.append(contentsOf: Array("\\n".utf8))
            case 0x0D: out.append(contentsOf: Array("\\r".utf8))
            case 0x09: out.append(contentsOf: Array("\\t".utf8))
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: Array("\\u00".utf8))
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0xF)])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// Byte-wise UTF-8 order, the order the reference implementation sorts names in.
    static func utf8Less(_ a: String, _ b: String) -> Bool {
        a.utf8.lexicographicallyPrecedes(b.utf8)
    }
}

// MARK: JSON shapes

private struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

private struct RawEntry: Decodable {
    let dtype: String
    let shape: [Int]
    let data_offsets: [Int]
}

private struct RawHeader: Decodable {
    var entries: [(String, RawEntry)] = []
    var metadata: [String: String]?

    init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: AnyKey.self)
        for key in container.allKeys {
            if key.stringValue == SafeTensorsHeader.metadataKey {
                metadata = try container.decode([String: String].self, forKey: key)
            } else {
                entries.append((key.stringValue, try container.decode(RawEntry.self, forKey: key)))
            }
        }
    }
}
