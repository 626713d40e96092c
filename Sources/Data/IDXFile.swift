import CZlib
import Foundation

/// The IDX format of MNIST-style datasets: a magic number (0, 0, type 0x08 = UInt8, rank),
/// big-endian dimension sizes, then the data. Files may be gzip-compressed.
public struct IDXFile {
    public let dimensions: [Int]
    public let bytes: [UInt8]

    public init(contentsOf url: URL) throws {
        let raw = try IDXFile.readPossiblyGzipped(url)
        let path = url.path
        guard raw.count >= 4 else { throw DataError.malformed(path: path, reason: "shorter than the 4-byte IDX header") }
        guard raw[0] == 0, raw[1] == 0 else {
            throw DataError.malformed(path: path, reason: "bad magic number (not an IDX file)")
        }
        guard raw[2] == 0x08 else {
            throw DataError.malformed(path: path, reason: "element type 0x\(String(raw[2], radix: 16)) is not unsigned byte (0x08)")
        }
        let rank = Int(raw[3])
        let headerSize = 4 + 4 * rank
        guard rank > 0, raw.count >= headerSize else {
            throw DataError.malformed(path: path, reason: "truncated header (rank \(rank))")
        }
        var dims: [Int] = []
        for d in 0..<rank {
            let o = 4 + 4 * d
            dims.append(Int(raw[o]) << 24 | Int(raw[o + 1]) << 16 | Int(raw[o + 2]) << 8 | Int(raw[o + 3]))
        }
        let expected = dims.reduce(1, *)
        guard raw.count - headerSize == expected else {
            throw DataError.malformed(path: path, reason: "dimensions \(dims) need \(expected) bytes of data, file has \(raw.count - headerSize)")
        }
        dimensions = dims
        bytes = Array(raw[headerSize...])
    }

    /// Reads a file, inflating it when it is gzip-compressed (zlib reads plain files as is).
    static func readPossiblyGzipped(_ url: URL) throws -> [UInt8] {
        guard FileManager.default.isReadableFile(atPath: url.path) else {
            throw DataError.unreadable(path: url.path, reason: "no such file or not readable")
        }
        guard let file = gzopen(url.path, "rb") else {
            throw DataError.unreadable(path: url.path, reason: "gzopen failed")
        }
        defer { gzclose(file) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32($0.count)) }
            if n < 0 {
                var errnum: Int32 = 0
                let message = gzerror(file, &errnum).map { String(cString: $0) } ?? "unknown error"
                throw DataError.malformed(path: url.path, reason: "decompression failed: \(message)")
            }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<Int(n)])
        }
        return out
    }
}
