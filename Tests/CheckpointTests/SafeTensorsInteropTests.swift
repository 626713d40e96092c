import XCTest
import Tensor
@testable import Checkpoint

/// Files exchanged with the Python `safetensors` package (Tests/Fixtures/generate_safetensors_fixture.py).
final class SafeTensorsInteropTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    func fixture(_ name: String) -> URL { Self.fixtures.appendingPathComponent(name) }

    struct Expected: Decodable {
        struct Entry: Decodable {
            let dtype: String
            let shape: [Int]
            let float32_bits: [Int32]?
        }
        let metadata: [String: String]
        let tensors: [String: Entry]
    }

    /// Every tensor Python wrote reads back with exactly the Float32 bits torch converts it to.
    func testReadsFileWrittenByPython() throws {
        let expected = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: fixture("python_mixed.expected.json")))
        let file = try SafeTensors.read(fixture("python_mixed.safetensors"))
        XCTAssertEqual(file.metadata, expected.metadata)
        XCTAssertEqual(Set(file.names), Set(expected.tensors.keys))
        let dtypes: [String: SafeTensorsDType] = ["float32": .float32, "float16": .float16, "bfloat16": .bfloat16,
                                                  "float64": .float64, "int64": .int64]
        var checkedDTypes = Set<SafeTensorsDType>()
        for (name, entry) in expected.tensors {
            let dtype = try file.dtype(of: name)
            XCTAssertEqual(dtype, dtypes[entry.dtype], name)
            XCTAssertEqual(try file.shape(of: name), entry.shape, name)
            guard let bits = entry.float32_bits else { continue }
            let tensor = try file.tensor(named: name, expectedShape: entry.shape)
            XCTAssertEqual(tensor.scalars.map(\.bitPattern), bits.map { UInt32(bitPattern: $0) }, name)
            checkedDTypes.insert(dtype)
        }
        XCTAssertEqual(checkedDTypes, [.float32, .float16, .bfloat16, .float64])
    }

    /// Reading Python's single-dtype files and writing them back reproduces them byte for byte:
    /// same JSON layout, ordering, padding and data encoding as the reference implementation.
    func testRewritingPythonFilesIsByteIdentical() throws {
        let dir = try makeScratchDirectory(self)
        for (suffix, dtype) in [("f32", SafeTensorsDType.float32), ("f16", .float16), ("bf16", .bfloat16)] {
            let source = fixture("python_reference_\(suffix).safetensors")
            let file = try SafeTensors.read(source)
            XCTAssertEqual(file.metadata, ["step": "100"])
            let copy = dir.appendingPathComponent("copy_\(suffix).safetensors")
            try SafeTensors.write(try file.allTensors(), metadata: file.metadata, to: copy, dtype: dtype)
            XCTAssertEqual(try Data(contentsOf: copy), try Data(contentsOf: source), suffix)
        }
    }

    /// Values chosen to exercise rounding: random data across scales, F16/BF16 ties, overflow,
    /// subnormals, signed zero and infinities.
    static func swiftWrittenTensors() -> [String: Tensor] {
        var g = RandomGenerator(seed: 2024)
        let edges: [Float] = [
            1 + 0x1p-11, 1 + 3 * 0x1p-11, 1 + 0x1p-8, 1 + 3 * 0x1p-8, 65504, 65519, 65520, 1e6,
            0x1p-24, 0x1p-25, 3 * 0x1p-25, 1e-8, 1e-30, -0.0, .infinity, -.infinity, 0.1, -3.14159,
        ]
        return [
            "edges": Tensor(shape: [edges.count], scalars: edges),
            "small.weight": Tensor.randomNormal([16, 8], std: 1e-3, generator: &g),
            "unit.weight": Tensor.randomNormal([4, 4, 3, 3], generator: &g),
            "large.bias": Tensor.randomNormal([32], std: 1e4, generator: &g),
            "scalar": Tensor(scalar: 0.18215),
        ]
    }

    static let swiftMetadata = ["producer": "swift-test", "purpose": "interop"]

    /// Our writer's output for fixed tensors is pinned to the committed files, which the fixture
    /// script loads in Python (checking F16/BF16 bits against torch's own conversion). Set
    /// REGENERATE_CHECKPOINT_FIXTURES=1 to rewrite them after an intended format change.
    func testWriterOutputMatchesFilesVerifiedInPython() throws {
        let regenerate = ProcessInfo.processInfo.environment["REGENERATE_CHECKPOINT_FIXTURES"] == "1"
        let dir = try makeScratchDirectory(self)
        for (suffix, dtype) in [("f32", SafeTensorsDType.float32), ("f16", .float16), ("bf16", .bfloat16)] {
            let name = "swift_written_\(suffix).safetensors"
            let target = regenerate ? fixture(name) : dir.appendingPathComponent(name)
            try SafeTensors.write(Self.swiftWrittenTensors(), metadata: Self.swiftMetadata, to: target, dtype: dtype)
            XCTAssertEqual(try Data(contentsOf: target), try Data(contentsOf: fixture(name)), name)
        }
    }
}
