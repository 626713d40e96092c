import CZstd
import Foundation

/// One-shot zstd compression of whole shard payloads.
///
/// Frames carry zstd's own content checksum (ZSTD_c_checksumFlag), so a corrupted payload is
/// caught by the decompressor even when a caller skips the file-level XXH64. Compression is
/// single-threaded on purpose: zstd's multi-threaded mode produces different bytes, and the
/// cache must be byte-identical however many ranks or threads wrote it.
enum Zstd {
    /// The most a frame can expand: a block holds at most 128 KiB and takes at least 4 bytes
    /// (a 3-byte block header and one byte repeated, an RLE block).
    static let maximumExpansion = (128 * 1024) / 4

    struct Failure: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }

    static func compress(_ source: UnsafeRawBufferPointer, level: Int32) throws -> [UInt8] {
        guard let context = ZSTD_createCCtx() else { throw Failure(message: "zstd: cannot create a compression context") }
        defer { ZSTD_freeCCtx(context) }
        try check(ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, level), "setting level \(level)")
        try check(ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, 1), "enabling the frame checksum")
        let bound = ZSTD_compressBound(source.count)
        var out = [UInt8](repeating: 0, count: bound)
        let written = try out.withUnsafeMutableBytes { dst in
            try check(ZSTD_compress2(context, dst.baseAddress, bound, source.baseAddress, source.count), "compressing")
        }
        out.removeSubrange(written...)
        return out
    }

    /// Decompresses one frame that must expand to exactly `expectedSize` bytes.
    static func decompress(_ source: UnsafeRawBufferPointer, expectedSize: Int,
                           into destination: UnsafeMutableRawBufferPointer) throws {
        precondition(destination.count >= expectedSize, "Zstd.decompress: destination smaller than \(expectedSize) bytes")
        let declared = ZSTD_getFrameContentSize(source.baseAddress, source.count)
        if declared == ZSTD_CONTENTSIZE_ERROR { throw Failure(message: "not a zstd frame") }
        if declared != ZSTD_CONTENTSIZE_UNKNOWN && declared != UInt64(expectedSize) {
            throw Failure(message: "zstd frame declares \(declared) bytes, the header \(expectedSize)")
        }
        guard let context = ZSTD_createDCtx() else { throw Failure(message: "zstd: cannot create a decompression context") }
        defer { ZSTD_freeDCtx(context) }
        let n = try check(ZSTD_decompressDCtx(context, destination.baseAddress, expectedSize, source.baseAddress, source.count),
                          "decompressing")
        guard n == expectedSize else { throw Failure(message: "zstd frame expanded to \(n) bytes, expected \(expectedSize)") }
    }

    @discardableResult
    private static func check(_ code: Int, _ what: String) throws -> Int {
        if ZSTD_isError(code) != 0 {
            throw Failure(message: "zstd failed \(what): \(String(cString: ZSTD_getErrorName(code)))")
        }
        return code
    }
}

extension ShardCodec {
    /// zstd with the cache's settings on arbitrary bytes (benchmarks compare layouts with it).
    public static func compressForComparison(_ bytes: UnsafeRawBufferPointer, level: Int) throws -> [UInt8] {
        try Zstd.compress(bytes, level: Int32(level))
    }
}
