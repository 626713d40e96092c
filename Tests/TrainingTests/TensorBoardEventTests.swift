import Data
import Distributed
import Foundation
import Tensor
import XCTest
@testable import Training

/// The event files decoded here independently of the writer: record framing, masked CRC-32C
/// of both length and data, and the Event / Summary / Value / Image protobuf fields.
final class TensorBoardEventTests: XCTestCase {
    struct Field { let number: Int; let varint: UInt64?; let bytes: [UInt8]?; let fixed: UInt64? }

    /// A protobuf message's fields (varint, 64-bit, length-delimited, 32-bit).
    func fields(_ b: [UInt8]) throws -> [Field] {
        var i = 0, out: [Field] = []
        func varint() -> UInt64 {
            var v: UInt64 = 0, shift: UInt64 = 0
            while true { let x = b[i]; i += 1; v |= UInt64(x & 0x7F) << shift; if x < 0x80 { return v }; shift += 7 }
        }
        while i < b.count {
            let key = varint()
            let number = Int(key >> 3)
            switch key & 7 {
            case 0: out.append(Field(number: number, varint: varint(), bytes: nil, fixed: nil))
            case 1: out.append(Field(number: number, varint: nil, bytes: nil, fixed: b[i..<i + 8].reversed().reduce(0) { $0 << 8 | UInt64($1) })); i += 8
            case 2: let n = Int(varint()); out.append(Field(number: number, varint: nil, bytes: Array(b[i..<i + n]), fixed: nil)); i += n
            case 5: out.append(Field(number: number, varint: nil, bytes: nil, fixed: b[i..<i + 4].reversed().reduce(0) { $0 << 8 | UInt64($1) })); i += 4
            default: throw CocoaError(.coderReadCorrupt)
            }
        }
        return out
    }

    /// Every record's data, checking the framing CRCs.
    func records(_ url: URL) throws -> [[UInt8]] {
        let b = [UInt8](try Data(contentsOf: url))
        var i = 0, out: [[UInt8]] = []
        func le(_ start: Int, _ n: Int) -> UInt64 { b[start..<start + n].reversed().reduce(0) { $0 << 8 | UInt64($1) } }
        while i < b.count {
            let length = Int(le(i, 8))
            XCTAssertEqual(UInt32(le(i + 8, 4)), CRC32C.masked(b[i..<i + 8]), "length CRC")
            let data = Array(b[i + 12..<i + 12 + length])
            XCTAssertEqual(UInt32(le(i + 12 + length, 4)), CRC32C.masked(data), "data CRC")
            out.append(data)
            i += 16 + length
        }
        return out
    }

    func testCRC32CMatchesTheCastagnoliCheckValue() {
        XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)
        XCTAssertEqual(CRC32C.checksum([UInt8]()), 0)
    }

    func testScalarsAndImagesDecodeToWhatWasWritten() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tb-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let writer = try TensorBoardEventWriter(directory: dir, wallTime: 1000)
        try writer.scalars(["loss": 0.25, "lr": 1e-4, "skipped": .nan], step: 7, wallTime: 1001)
        let png = dir.appendingPathComponent("grid.png")
        try ImageGrid.write(Tensor(repeating: 0.5, shape: [2, 1, 4, 4]), to: png, columns: 2)
        try writer.image("grid", pngFile: png, step: 9)
        XCTAssertTrue(writer.url.lastPathComponent.hasPrefix("events.out.tfevents.1000."))

        let events = try records(writer.url)
        XCTAssertEqual(events.count, 3)
        let header = try fields(events[0])
        XCTAssertEqual(header.first { $0.number == 3 }?.bytes.map { String(decoding: $0, as: UTF8.self) }, "brain.Event:2")
        XCTAssertEqual(header.first { $0.number == 1 }?.fixed.map { Double(bitPattern: $0) }, 1000)

        let scalarEvent = try fields(events[1])
        XCTAssertEqual(scalarEvent.first { $0.number == 2 }?.varint, 7)
        let summary = try fields(try XCTUnwrap(scalarEvent.first { $0.number == 5 }?.bytes))
        var decoded: [String: Float] = [:]
        for value in summary where value.number == 1 {
            let v = try fields(value.bytes!)
            decoded[String(decoding: v.first { $0.number == 1 }!.bytes!, as: UTF8.self)] =
                Float(bitPattern: UInt32(v.first { $0.number == 2 }!.fixed!))
        }
        XCTAssertEqual(decoded, ["loss": 0.25, "lr": 1e-4], "non-finite values are left out")

        let imageEvent = try fields(events[2])
        XCTAssertEqual(imageEvent.first { $0.number == 2 }?.varint, 9)
        let value = try fields(try XCTUnwrap(try fields(try XCTUnwrap(imageEvent.first { $0.number == 5 }?.bytes)).first?.bytes))
        XCTAssertEqual(value.first { $0.number == 1 }?.bytes.map { String(decoding: $0, as: UTF8.self) }, "grid")
        let image = try fields(try XCTUnwrap(value.first { $0.number == 4 }?.bytes))
        let grid = try PNG.read(png)
        XCTAssertEqual(image.first { $0.number == 1 }?.varint, UInt64(grid.height))
        XCTAssertEqual(image.first { $0.number == 2 }?.varint, UInt64(grid.width))
        XCTAssertEqual(image.first { $0.number == 3 }?.varint, 1)
        XCTAssertEqual(image.first { $0.number == 4 }?.bytes, [UInt8](try Data(contentsOf: png)))
    }

    func testTrainingRunsWriteEventsBesideTheirMetrics() throws {
        let tiny = try TinyLatentCache()
        defer { tiny.remove() }
        let trainer = try LDMTrainer.start(config: try tiny.config(tiny.yaml(run: "tb", maxSteps: 2,
                                                                               sampling: "{every: 0, steps: 2, per_class: 1}")),
                                           communicator: SingleProcessCommunicator())
        try trainer.train()
        let names = try FileManager.default.contentsOfDirectory(atPath: tiny.run("tb").path)
        let file = try XCTUnwrap(names.first { $0.hasPrefix("events.out.tfevents.") }, "\(names)")
        let events = try records(tiny.run("tb").appendingPathComponent(file))
        var tags = Set<String>()
        for event in events.dropFirst() {
            guard let summary = try fields(event).first(where: { $0.number == 5 })?.bytes else { continue }
            for value in try fields(summary) where value.number == 1 {
                tags.insert(String(decoding: try fields(value.bytes!).first { $0.number == 1 }!.bytes!, as: UTF8.self))
            }
        }
        XCTAssertTrue(tags.isSuperset(of: ["loss", "grad_norm", "heldout/eps_mse", "samples (a row per class)"]), "\(tags)")
    }
}
