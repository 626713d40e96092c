import Foundation
import Tensor

extension SafeTensors {
    /// Elements converted per write when storing F16/BF16, bounding the scratch memory.
    static let conversionChunk = 1 << 20

    /// Writes `tensors` as one safetensors file, atomically (see `AtomicFile`).
    ///
    /// The output is deterministic: tensors are laid out and listed in byte-wise name order,
    /// metadata keys sorted, the header padded with spaces to a multiple of 8 bytes as the
    /// reference implementation does. With a single metadata key (or none) the bytes equal
    /// what Python's `safetensors.torch.save_file` writes for the same tensors.
    /// - Parameter dtype: `.float32` (exact), `.float16` or `.bfloat16` (rounded to nearest even;
    ///   F16 overflows to ±infinity beyond ±65504).
    public static func write(_ tensors: [String: Tensor], metadata: [String: String] = [:],
                             to url: URL, dtype: SafeTensorsDType = .float32) throws {
        let layout = try plan(tensors, dtype: dtype, file: url.path)
        try AtomicFile.write(to: url) { writer in
            try write(layout, metadata: metadata, dtype: dtype, into: writer)
        }
    }

    /// Tensors in file order with their byte ranges.
    private static func plan(_ tensors: [String: Tensor], dtype: SafeTensorsDType,
                             file: String) throws -> [(name: String, entry: SafeTensorsEntry, tensor: Tensor)] {
        guard dtype.isWritable else { throw SafeTensorsError(file: file, .unsupportedDType(dtype)) }
        var offset = 0
        return try tensors.keys.sorted(by: SafeTensorsHeader.utf8Less).map { name in
            guard name != SafeTensorsHeader.metadataKey else {
                throw SafeTensorsError(file: file, key: name, .invalidName)
            }
            let tensor = tensors[name]!
            let byteCount = tensor.count * dtype.byteSize
            let entry = SafeTensorsEntry(dtype: dtype, shape: tensor.shape, dataRange: offset..<(offset + byteCount))
            offset += byteCount
            return (name, entry, tensor)
        }
    }

    private static func write(_ layout: [(name: String, entry: SafeTensorsEntry, tensor: Tensor)],
                              metadata: [String: String], dtype: SafeTensorsDType, into writer: FileWriter) throws {
        let header = SafeTensorsHeader.encode(entries: layout.map { ($0.name, $0.entry) }, metadata: metadata)
        var length = UInt64(header.count).littleEndian
        try withUnsafeBytes(of: &length) { try writer.write($0) }
        try header.withUnsafeBytes { try writer.write($0) }

        if dtype == .float32 {
            for (_, _, tensor) in layout {
                try writer.write(contentsOf: UnsafeBufferPointer(tensor.buffer))   // host is little-endian
            }
            return
        }

        let scratch = UnsafeMutableRawPointer.allocate(byteCount: conversionChunk * dtype.byteSize, alignment: 64)
        defer { scratch.deallocate() }
        for (_, _, tensor) in layout {
            var start = 0
            while start < tensor.count {
                let count = min(conversionChunk, tensor.count - start)
                if dtype == .float16 {
                    HalfPrecision.encodeFloat16(tensor.pointer + start, into: scratch, count: count)
                } else {
                    HalfPrecision.encodeBFloat16(tensor.pointer + start, into: scratch, count: count)
                }
                try writer.write(UnsafeRawBufferPointer(start: scratch, count: count * dtype.byteSize))
                start += count
            }
        }
    }
}
