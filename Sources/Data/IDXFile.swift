import CZlib
import Foundation

/// The IDX format of MNIST-style datasets: a magic number (0, 0, type 0x08 = UInt8, rank),
/// big-endian dimension sizes, then the data. Files may be gzip-compressed.
public struct IDXFile {
    public let dimensions: [Int]
    public let bytes: [UInt8]

    /// Reads the header first and then exactly the bytes it announces, so a corrupt header or
    /// a gzip stream that inflates to far more than it should never sizes an allocation: memory
    /// grows only with data that is really there, up to what the dimensions need.
    public init(contentsOf url: URL) throws {
        let path = url.path
        let stream = try GzipStream(url)
        func malformed(_ reason: String) -> DataError { .malformed(path: path, reason: reason) }
        let magic = try stream.read(4)
        guard magic.count == 4 else { throw malformed("shorter than the 4-byte IDX header") }
        guard magic[0] == 0, magic[1] == 0 else { throw malformed("bad magic number (not an IDX file)") }
        guard magic[2] == 0x08 else {
            throw malformed("element type 0x\(String(magic[2], radix: 16)) is not unsigned byte (0x08)")
        }
        let rank = Int(magic[3])
        let sizes = try stream.read(4 * rank)
        guard rank > 0, sizes.count == 4 * rank else { throw malformed("truncated header (rank \(rank))") }
        var dims: [Int] = []
        var expected = 1
        for d in 0..<rank {
            let o = 4 * d
            let size = Int(sizes[o]) << 24 | Int(sizes[o + 1]) << 16 | Int(sizes[o + 2]) << 8 | Int(sizes[o + 3])
            dims.append(size)
            let (product, overflow) = expected.multipliedReportingOverflow(by: size)
            guard !overflow else { throw malformed("dimensions \(dims) are too large") }
            expected = product
        }
        let data = try stream.read(expected)
        guard data.count == expected else {
            throw malformed("dimensions \(dims) need \(expected) bytes of data, file has \(data.count)")
        }
        let extra = try stream.countRemaining()
        guard extra == 0 else {
            throw malformed("dimensions \(dims) need \(expected) bytes of data, file has \(expected + extra)")
        }
        dimensions = dims
        bytes = data
    }
}

/// A file read through zlib's gz* functions, which read plain files as they are.
final class GzipStream {
    private let file: gzFile
    private let path: String

    init(_ url: URL) throws {
        path = url.path
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw DataError.unreadable(path: path, reason: "no such file or not readable")
        }
        guard let file = gzopen(path, "rb") else { throw DataError.unreadable(path: path, reason: "gzopen failed") }
        self.file = file
    }

    deinit { gzclose(file) }

    /// Up to `count` bytes (fewer only at the end of the data), in chunks of at most 1 MiB.
    func read(_ count: Int) throws -> [UInt8] {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: min(count, 1 << 20))
        while out.count < count {
            let want = min(chunk.count, count - out.count)
            let n = try readChunk(into: &chunk, want)
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<n])
        }
        return out
    }

    /// The number of bytes left (counted up to 16 MiB, so a stream that inflates without end
    /// is not read to its end), read and discarded in bounded chunks.
    func countRemaining() throws -> Int {
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        var total = 0
        while total < 1 << 24 {
            let n = try readChunk(into: &chunk, chunk.count)
            if n == 0 { return total }
            total += n
        }
        return total
    }

    private func readChunk(into chunk: inout [UInt8], _ want: Int) throws -> Int {
        let n = chunk.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32(want)) }
        guard n >= 0 else {
            var errnum: Int32 = 0
            let message = gzerror(file, &errnum).map { String(cString: $0) } ?? "unknown error"
            throw DataError.malformed(path: path, reason: "decompression failed: \(message)")
        }
        return Int(n)
    }
}
