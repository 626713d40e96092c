import Checkpoint
import Foundation

/// The on-disk shard format (all integers little-endian):
///
///     0   magic "LDMLATNT"
///     8   UInt32 shard format version (1)
///     12  UInt8 dtype (0 fp32, 1 fp16), UInt8 stored (0 mean+logvar, 1 latent),
///         UInt8 has captions (0/1), UInt8 reserved
///     16  UInt64 sample count N        24  UInt64 first sample (position in the split)
///     32  UInt32 C, h, w, reserved     48  UInt64 payload bytes     56  UInt64 frame bytes
///     64  one zstd frame (with content checksum) of the payload:
///           Int64 dataset index × N, Int32 label × N,
///           per field: N·C·h·w values of dtype, byte-shuffled,
///           if captions: UInt32 byte length × N (0xFFFFFFFF = none), then the UTF-8 bytes.
///
/// The header is uncompressed so `cache verify` can check counts against the manifest before
/// decompressing. The bytes are a pure function of the samples, dtype and level.
public enum ShardCodec {
    public static let magic: [UInt8] = Array("LDMLATNT".utf8)
    public static let version: UInt32 = 1
    public static let headerSize = 64
    static let noCaption = UInt32.max

    public struct Header: Equatable {
        public var dtype: LatentDType
        public var stored: StoredLatent
        public var hasCaptions: Bool
        public var sampleCount: Int
        public var firstSample: Int
        public var latentShape: [Int]
        public var payloadBytes: Int
        public var frameBytes: Int
    }

    // MARK: Encoding

    public static func encode(_ shard: LatentShard, dtype: LatentDType, level: Int) throws -> [UInt8] {
        let n = shard.sampleCount, size = shard.latentSize
        var payload = [UInt8]()
        payload.reserveCapacity(n * 12 + shard.fields.count * n * size * dtype.byteCount)
        for i in shard.datasetIndices { appendLE(&payload, UInt64(bitPattern: Int64(i))) }
        for l in shard.labels { appendLE(&payload, UInt32(bitPattern: Int32(l))) }
        var plain = [UInt8](repeating: 0, count: n * size * dtype.byteCount)
        var shuffled = plain
        for field in shard.fields {
            field.withUnsafeBufferPointer { src in
                plain.withUnsafeMutableBytes { dst in
                    switch dtype {
                    case .float16: HalfPrecision.encodeFloat16(src.baseAddress!, into: dst.baseAddress!, count: src.count)
                    case .float32:
                        for (k, v) in src.enumerated() { dst.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: 4 * k, as: UInt32.self) }
                    }
                }
            }
            plain.withUnsafeBytes { src in
                shuffled.withUnsafeMutableBytes { dst in
                    ByteShuffle.shuffle(src.baseAddress!, into: dst.baseAddress!, count: n * size, elementSize: dtype.byteCount)
                }
            }
            payload.append(contentsOf: shuffled)
        }
        if let captions = shard.captions {
            let utf8 = captions.map { $0.map { Array($0.utf8) } }
            for c in utf8 { appendLE(&payload, c.map { UInt32($0.count) } ?? noCaption) }
            for c in utf8 { if let c { payload.append(contentsOf: c) } }
        }
        let frame = try payload.withUnsafeBytes { try Zstd.compress($0, level: Int32(level)) }

        var out = magic
        appendLE(&out, version)
        out += [dtype.code, shard.stored.code, shard.captions == nil ? 0 : 1, 0]
        appendLE(&out, UInt64(n))
        appendLE(&out, UInt64(shard.firstSample))
        for d in shard.latentShape { appendLE(&out, UInt32(d)) }
        appendLE(&out, UInt32(0))
        appendLE(&out, UInt64(payload.count))
        appendLE(&out, UInt64(frame.count))
        assert(out.count == headerSize)
        return out + frame
    }

    // MARK: Decoding

    /// Parses and checks the fixed header; `shard` names the file in errors.
    public static func header(of bytes: UnsafeRawBufferPointer, shard: String) throws -> Header {
        func bad(_ reason: String) -> LatentCacheError { .shardMalformed(shard: shard, reason: reason) }
        guard bytes.count >= headerSize else { throw bad("\(bytes.count) bytes is shorter than the \(headerSize)-byte header") }
        guard Array(bytes[0..<8]) == magic else { throw bad("not a latent shard (bad magic)") }
        let v: UInt32 = readLE(bytes, 8)
        guard v == version else { throw bad("shard format version \(v), this build reads \(version)") }
        guard let dtype = LatentDType(code: bytes[12]) else { throw bad("unknown dtype code \(bytes[12])") }
        guard let stored = StoredLatent(code: bytes[13]) else { throw bad("unknown stored-field code \(bytes[13])") }
        // Every size is checked against the file's length before anything is sized by it.
        func integer(at offset: Int, _ name: String) throws -> Int {
            let value: UInt64 = readLE(bytes, offset)
            guard let int = Int(exactly: value) else { throw bad("\(name) \(value) is out of range") }
            return int
        }
        let count = try integer(at: 16, "sample count"), first = try integer(at: 24, "first sample")
        let shape = [Int(readLE(bytes, 32) as UInt32), Int(readLE(bytes, 36) as UInt32), Int(readLE(bytes, 40) as UInt32)]
        let payload = try integer(at: 48, "payload size"), frame = try integer(at: 56, "frame size")
        guard frame == bytes.count - headerSize else {
            throw bad("header declares a \(frame)-byte frame but the file holds \(bytes.count - headerSize) bytes after the header (truncated?)")
        }
        // A zstd block expands to at most 128 KiB from at least 4 bytes (an RLE block).
        guard payload <= frame * Zstd.maximumExpansion else {
            throw bad("payload of \(payload) bytes cannot come from a \(frame)-byte zstd frame")
        }
        // The shape alone first: with no samples the product below is 0 whatever the shape, and
        // the decoder still multiplies the shape out.
        guard shape.allSatisfy({ $0 > 0 }) else { throw bad("latent shape \(shape) has a zero dimension") }
        guard checkedProduct(shape) != nil else { throw bad("latent shape \(shape) has more elements than fit in memory") }
        // Indices and labels (12 bytes a sample), then the latent fields.
        guard let indexBytes = checkedProduct([count, 12]),
              let latentBytes = checkedProduct([count, stored.fieldCount, dtype.byteCount] + shape),
              case let (minimum, false) = indexBytes.addingReportingOverflow(latentBytes), payload >= minimum else {
            throw bad("payload of \(payload) bytes cannot hold \(count) samples of \(shape)")
        }
        return Header(dtype: dtype, stored: stored, hasCaptions: bytes[14] != 0, sampleCount: count, firstSample: first,
                      latentShape: shape, payloadBytes: payload, frameBytes: frame)
    }

    public static func decode(_ data: [UInt8], shard: String) throws -> LatentShard {
        try data.withUnsafeBytes { try decode($0, shard: shard) }
    }

    public static func decode(_ bytes: UnsafeRawBufferPointer, shard: String) throws -> LatentShard {
        func bad(_ reason: String) -> LatentCacheError { .shardMalformed(shard: shard, reason: reason) }
        let h = try header(of: bytes, shard: shard)
        var payload = [UInt8](repeating: 0, count: h.payloadBytes)
        do {
            try payload.withUnsafeMutableBytes { dst in
                try Zstd.decompress(UnsafeRawBufferPointer(rebasing: bytes[headerSize...]), expectedSize: h.payloadBytes, into: dst)
            }
        } catch {
            throw bad("\(error)")
        }
        let n = h.sampleCount, size = h.latentShape.reduce(1, *), width = h.dtype.byteCount
        return try payload.withUnsafeBytes { p -> LatentShard in
            var offset = 0
            var indices = [Int](repeating: 0, count: n), labels = [Int](repeating: 0, count: n)
            for i in 0..<n { indices[i] = Int(Int64(bitPattern: readLE(p, offset + 8 * i))) }
            offset += 8 * n
            for i in 0..<n { labels[i] = Int(Int32(bitPattern: readLE(p, offset + 4 * i))) }
            offset += 4 * n
            var fields: [[Float]] = []
            var plain = [UInt8](repeating: 0, count: n * size * width)
            for _ in 0..<h.stored.fieldCount {
                plain.withUnsafeMutableBytes { dst in
                    ByteShuffle.unshuffle(p.baseAddress! + offset, into: dst.baseAddress!, count: n * size, elementSize: width)
                }
                offset += n * size * width
                var values = [Float](repeating: 0, count: n * size)
                plain.withUnsafeBytes { src in
                    values.withUnsafeMutableBufferPointer { dst in
                        switch h.dtype {
                        case .float16: HalfPrecision.decodeFloat16(src.baseAddress!, into: dst.baseAddress!, count: dst.count)
                        case .float32:
                            for k in 0..<dst.count { dst[k] = Float(bitPattern: readLE(src, 4 * k)) }
                        }
                    }
                }
                fields.append(values)
            }
            var captions: [String?]?
            if h.hasCaptions {
                guard offset + 4 * n <= p.count else { throw bad("caption lengths run past the payload") }
                let lengths: [UInt32] = (0..<n).map { readLE(p, offset + 4 * $0) }
                offset += 4 * n
                var list: [String?] = []
                for length in lengths {
                    if length == noCaption { list.append(nil); continue }
                    guard offset + Int(length) <= p.count else { throw bad("caption bytes run past the payload") }
                    guard let text = String(validating: UnsafeRawBufferPointer(rebasing: p[offset..<offset + Int(length)]), as: UTF8.self) else {
                        throw bad("a caption is not valid UTF-8")
                    }
                    list.append(text)
                    offset += Int(length)
                }
                captions = list
            }
            guard offset == p.count else { throw bad("\(p.count - offset) unexpected bytes at the end of the payload") }
            return LatentShard(firstSample: h.firstSample, latentShape: h.latentShape, stored: h.stored, datasetIndices: indices,
                               labels: labels, fields: fields, captions: captions)
        }
    }

    /// The product of `factors`, or nil when it does not fit in an Int.
    static func checkedProduct(_ factors: [Int]) -> Int? {
        var product = 1
        for factor in factors {
            let (next, overflow) = product.multipliedReportingOverflow(by: factor)
            if overflow { return nil }
            product = next
        }
        return product
    }

    // MARK: Little-endian helpers

    static func appendLE<T: FixedWidthInteger>(_ bytes: inout [UInt8], _ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    static func readLE<T: FixedWidthInteger>(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> T {
        T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}
