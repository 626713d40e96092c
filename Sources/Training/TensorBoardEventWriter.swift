import Foundation

/// Writes TensorBoard event files (what PyTorch Lightning, the reference's trainer, writes), so
/// `tensorboard --logdir Checkpoints/` shows every run's scalars and images.
///
/// A file `events.out.tfevents.<seconds>.<host>` of records `uint64 length | uint32
/// masked_crc32c(length) | data | uint32 masked_crc32c(data)` (little-endian), each record an
/// `Event` protobuf: wall_time = 1 (double), step = 2 (int64), file_version = 3 (string, the
/// first record: "brain.Event:2"), summary = 5 (Summary: repeated value = 1; Value: tag = 1,
/// simple_value = 2 (float), image = 4 (Image: height 1, width 2, colorspace 3,
/// encoded_image_string 4)). Every record is flushed as it is written, so a crash loses none.
public final class TensorBoardEventWriter {
    public let url: URL
    private let handle: FileHandle

    public init(directory: URL, wallTime: Double = Date().timeIntervalSince1970) throws {
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "host"
        var name = "events.out.tfevents.\(Int(wallTime)).\(host)"
        var n = 1
        while FileManager.default.fileExists(atPath: directory.appendingPathComponent(name).path) {
            n += 1
            name = "events.out.tfevents.\(Int(wallTime)).\(host).\(n)"
        }
        url = directory.appendingPathComponent(name)
        guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: url.path])
        }
        handle = try FileHandle(forWritingTo: url)
        var event = Protobuf()
        event.double(1, wallTime)
        event.bytes(3, Array("brain.Event:2".utf8))
        try write(event.data)
    }

    deinit { try? handle.close() }

    /// Scalars at `step` (one Event with one Value per tag, in tag order).
    public func scalars(_ values: [String: Float], step: Int, wallTime: Double = Date().timeIntervalSince1970) throws {
        var summary = Protobuf()
        for (tag, v) in values.sorted(by: { $0.key < $1.key }) where v.isFinite {
            var value = Protobuf()
            value.bytes(1, Array(tag.utf8))
            value.float(2, v)
            summary.bytes(1, value.data)
        }
        try writeSummary(summary, step: step, wallTime: wallTime)
    }

    /// A PNG image at `step` (grey: colorspace 1, RGB: 3).
    public func image(_ tag: String, png: Data, width: Int, height: Int, channels: Int, step: Int,
                      wallTime: Double = Date().timeIntervalSince1970) throws {
        var image = Protobuf()
        image.varint(1, UInt64(height))
        image.varint(2, UInt64(width))
        image.varint(3, UInt64(channels))
        image.bytes(4, Array(png))
        var value = Protobuf()
        value.bytes(1, Array(tag.utf8))
        value.bytes(4, image.data)
        var summary = Protobuf()
        summary.bytes(1, value.data)
        try writeSummary(summary, step: step, wallTime: wallTime)
    }

    /// A PNG file as an image summary (its size read from the PNG header).
    public func image(_ tag: String, pngFile: URL, step: Int) throws {
        let png = try Data(contentsOf: pngFile)
        let bytes = [UInt8](png)
        guard bytes.count > 25, bytes[12..<16].elementsEqual(Array("IHDR".utf8)) else { return }
        func be32(_ i: Int) -> Int { bytes[i..<i + 4].reduce(0) { $0 << 8 | Int($1) } }
        let colorType = bytes[25]
        try image(tag, png: png, width: be32(16), height: be32(20), channels: colorType == 0 ? 1 : colorType == 2 ? 3 : 4,
                  step: step)
    }

    private func writeSummary(_ summary: Protobuf, step: Int, wallTime: Double) throws {
        var event = Protobuf()
        event.double(1, wallTime)
        event.varint(2, UInt64(bitPattern: Int64(step)))
        event.bytes(5, summary.data)
        try write(event.data)
    }

    private func write(_ data: [UInt8]) throws {
        var record: [UInt8] = []
        let length = withUnsafeBytes(of: UInt64(data.count).littleEndian, Array.init)
        record += length
        record += withUnsafeBytes(of: CRC32C.masked(length).littleEndian, Array.init)
        record += data
        record += withUnsafeBytes(of: CRC32C.masked(data).littleEndian, Array.init)
        try handle.write(contentsOf: Data(record))
        try handle.synchronize()
    }
}

/// The few protobuf wire encodings an Event needs.
struct Protobuf {
    private(set) var data: [UInt8] = []

    mutating func rawVarint(_ v: UInt64) {
        var v = v
        while v >= 0x80 { data.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        data.append(UInt8(v))
    }

    mutating func varint(_ field: Int, _ v: UInt64) { rawVarint(UInt64(field << 3)); rawVarint(v) }

    mutating func double(_ field: Int, _ v: Double) {
        rawVarint(UInt64(field << 3 | 1))
        data += withUnsafeBytes(of: v.bitPattern.littleEndian, Array.init)
    }

    mutating func float(_ field: Int, _ v: Float) {
        rawVarint(UInt64(field << 3 | 5))
        data += withUnsafeBytes(of: v.bitPattern.littleEndian, Array.init)
    }

    mutating func bytes(_ field: Int, _ b: [UInt8]) {
        rawVarint(UInt64(field << 3 | 2))
        rawVarint(UInt64(b.count))
        data += b
    }
}
