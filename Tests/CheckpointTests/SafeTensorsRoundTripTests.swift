import XCTest
import Tensor
@testable import Checkpoint

final class SafeTensorsRoundTripTests: XCTestCase {
    func sampleTensors() -> [String: Tensor] {
        var g = RandomGenerator(seed: 42)
        return [
            "unet.down.0.conv.weight": Tensor.randomNormal([8, 4, 3, 3], generator: &g),
            "unet.down.0.conv.bias": Tensor.randomNormal([8], std: 10, generator: &g),
            "scale": Tensor(scalar: 0.18215),
            "empty": Tensor(zeros: [0, 5]),
            "naïve \"name\"\n": Tensor(shape: [2], scalars: [-1e-3, 65000]),
        ]
    }

    func testFloat32RoundTripIsExact() throws {
        let dir = try makeScratchDirectory(self)
        let url = dir.appendingPathComponent("model.safetensors")
        let tensors = sampleTensors()
        let metadata = ["format": "pt", "step": "1200", "config": "{\"channels\": [64, 128]}"]
        try SafeTensors.write(tensors, metadata: metadata, to: url)

        let file = try SafeTensors.read(url)
        XCTAssertEqual(file.names, tensors.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
        XCTAssertEqual(file.metadata, metadata)
        for (name, original) in tensors {
            XCTAssertEqual(try file.dtype(of: name), .float32)
            XCTAssertEqual(try file.shape(of: name), original.shape)
            let loaded = try file.tensor(named: name)
            XCTAssertEqual(loaded.shape, original.shape, name)
            XCTAssertEqual(loaded.scalars.map(\.bitPattern), original.scalars.map(\.bitPattern), name)
        }
        XCTAssertEqual(try file.tensor(named: "scale", expectedShape: []).item, 0.18215)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["model.safetensors"])
    }

    func testFloat16RoundTripIsWithinHalfAnUlp() throws {
        let url = try makeScratchDirectory(self).appendingPathComponent("half.safetensors")
        let tensors = sampleTensors()
        try SafeTensors.write(tensors, to: url, dtype: .float16)
        let file = try SafeTensors.read(url)
        for (name, original) in tensors {
            XCTAssertEqual(try file.dtype(of: name), .float16)
            let loaded = try file.tensor(named: name)
            XCTAssertEqual(loaded.shape, original.shape)
            for (x, y) in zip(original.scalars, loaded.scalars) {
                // Nearest binary16: within half a spacing (2⁻¹¹ relative, 2⁻²⁵ absolute below the
                // normal range).
                XCTAssertLessThanOrEqual(abs(x - y), max(abs(x) * 0x1p-11, 0x1p-25), "\(name): \(x) → \(y)")
            }
        }
    }

    func testBFloat16RoundTripIsWithinHalfAnUlp() throws {
        let url = try makeScratchDirectory(self).appendingPathComponent("brain.safetensors")
        let tensors = sampleTensors()
        try SafeTensors.write(tensors, to: url, dtype: .bfloat16)
        let file = try SafeTensors.read(url)
        for (name, original) in tensors {
            XCTAssertEqual(try file.dtype(of: name), .bfloat16)
            for (x, y) in zip(original.scalars, try file.tensor(named: name).scalars) {
                XCTAssertLessThanOrEqual(abs(x - y), abs(x) * 0x1p-8, "\(name): \(x) → \(y)")
            }
        }
    }

    /// A tensor larger than one conversion chunk goes through the chunked F16 path intact.
    func testLargeFloat16TensorCrossesChunkBoundaries() throws {
        let url = try makeScratchDirectory(self).appendingPathComponent("large.safetensors")
        let count = SafeTensors.conversionChunk + 12_345
        let big = Tensor(uninitialized: [count])
        for i in 0..<count { big.pointer[i] = Float(i % 4096) - 2048 }   // all exact in F16
        try SafeTensors.write(["big": big], to: url, dtype: .float16)
        let loaded = try SafeTensors.read(url).tensor(named: "big")
        XCTAssertEqual(loaded.scalars, big.scalars)
    }

    func testOutputIsDeterministicAndAligned() throws {
        let dir = try makeScratchDirectory(self)
        let a = dir.appendingPathComponent("a.safetensors"), b = dir.appendingPathComponent("b.safetensors")
        let tensors = sampleTensors()
        try SafeTensors.write(tensors, metadata: ["z": "1", "a": "2"], to: a, dtype: .float16)
        try SafeTensors.write(tensors, metadata: ["a": "2", "z": "1"], to: b, dtype: .float16)
        let bytes = try Data(contentsOf: a)
        XCTAssertEqual(bytes, try Data(contentsOf: b))

        let headerLength = bytes.prefix(8).withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        XCTAssertEqual(headerLength % 8, 0, "data must start 8-byte aligned")
        let header = String(decoding: bytes[8..<(8 + Int(headerLength))], as: UTF8.self)
        XCTAssertTrue(header.hasPrefix("{\"__metadata__\":{\"a\":\"2\",\"z\":\"1\"},\"empty\":{\"dtype\":\"F16\",\"shape\":[0,5],\"data_offsets\":[0,0]}"), header)
        XCTAssertTrue(header.contains("\"na\u{EF}ve \\\"name\\\"\\n\":"), "escaped name in \(header)")
        // Tensors are packed in name order with no gaps, ending exactly at the end of the file.
        let file = try SafeTensors.read(a)
        var offset = 0
        for name in file.names {
            let range = file.entries[name]!.dataRange
            XCTAssertEqual(range.lowerBound, offset, name)
            offset = range.upperBound
        }
        XCTAssertEqual(8 + Int(headerLength) + offset, bytes.count)
    }

    func testWritingReplacesExistingFile() throws {
        let url = try makeScratchDirectory(self).appendingPathComponent("ckpt.safetensors")
        try SafeTensors.write(["w": Tensor(shape: [1], scalars: [1])], to: url)
        try SafeTensors.write(["w": Tensor(shape: [2], scalars: [2, 3])], to: url)
        XCTAssertEqual(try SafeTensors.read(url).tensor(named: "w").scalars, [2, 3])
    }

    func testEmptyFileOfTensors() throws {
        let url = try makeScratchDirectory(self).appendingPathComponent("none.safetensors")
        try SafeTensors.write([:], to: url)
        let file = try SafeTensors.read(url)
        XCTAssertEqual(file.names, [])
        XCTAssertEqual(file.metadata, [:])
        XCTAssertEqual(try Data(contentsOf: url).count, 16)
    }

    func testAllTensors() throws {
        let url = try makeScratchDirectory(self).appendingPathComponent("all.safetensors")
        try SafeTensors.write(sampleTensors(), to: url)
        let all = try SafeTensors.read(url).allTensors()
        XCTAssertEqual(Set(all.keys), Set(sampleTensors().keys))
    }
}
