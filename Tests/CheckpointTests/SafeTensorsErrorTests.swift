import XCTest
import Tensor
@testable import Checkpoint

/// Every malformed input is rejected with the right error, naming the file (and key).
final class SafeTensorsErrorTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = try makeScratchDirectory(self)
    }

    /// Writes a hand-made file: length prefix (the header's, unless overridden), header, data.
    func craft(_ name: String, header: String, data: [UInt8] = [], declaredLength: UInt64? = nil) throws -> URL {
        let url = directory.appendingPathComponent(name)
        let headerBytes = Array(header.utf8)
        var bytes = withUnsafeBytes(of: (declaredLength ?? UInt64(headerBytes.count)).littleEndian, Array.init)
        bytes += headerBytes + data
        try Data(bytes).write(to: url)
        return url
    }

    /// Asserts that `body` throws a SafeTensorsError of `kind` for `key` whose text names the file.
    func assertError<T>(_ kind: SafeTensorsError.Kind, key: String? = nil, in url: URL,
                        file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> T) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            guard let error = error as? SafeTensorsError else {
                return XCTFail("expected SafeTensorsError, got \(error)", file: file, line: line)
            }
            XCTAssertEqual(error.kind, kind, file: file, line: line)
            XCTAssertEqual(error.key, key, file: file, line: line)
            XCTAssertEqual(error.file, url.path, file: file, line: line)
            XCTAssertTrue(error.description.hasPrefix(url.path + ": "), error.description, file: file, line: line)
            if let key { XCTAssertTrue(error.description.contains("'\(key)'"), error.description, file: file, line: line) }
        }
    }

    func testFileTooShortForHeaderLength() throws {
        let url = directory.appendingPathComponent("short.safetensors")
        try Data([1, 2, 3, 4, 5]).write(to: url)
        assertError(.fileTooShort(fileSize: 5), in: url) { try SafeTensors.read(url) }
    }

    func testHeaderLengthLargerThanFile() throws {
        let url = try craft("long.safetensors", header: "{}", declaredLength: 1 << 40)
        assertError(.headerLengthExceedsFile(headerLength: 1 << 40, fileSize: 10), in: url) { try SafeTensors.read(url) }
        // A random binary file: the length prefix is garbage, far beyond any file size.
        let noise = try craft("noise.bin", header: "", declaredLength: 0xFFFF_FFFF_FFFF_FFFF)
        assertError(.headerLengthExceedsFile(headerLength: .max, fileSize: 8), in: noise) { try SafeTensors.read(noise) }
    }

    func testHeaderNotJSON() throws {
        let url = try craft("bad.safetensors", header: "{\"a\": {\"dtype\": ")
        XCTAssertThrowsError(try SafeTensors.read(url)) { error in
            guard case .headerNotJSON = (error as? SafeTensorsError)?.kind else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".contains("bad.safetensors"), "\(error)")
        }
    }

    func testHeaderNotAnObject() throws {
        let url = try craft("array.safetensors", header: "[1, 2, 3]")
        assertError(.headerNotAnObject, in: url) { try SafeTensors.read(url) }
    }

    func testUnknownDType() throws {
        let url = try craft("dtype.safetensors", header: #"{"w":{"dtype":"F12","shape":[1],"data_offsets":[0,2]}}"#,
                            data: [0, 0])
        assertError(.unknownDType("F12"), key: "w", in: url) { try SafeTensors.read(url) }
    }

    func testMalformedEntriesAndMetadata() throws {
        let missing = try craft("missing.safetensors", header: #"{"w":{"dtype":"F32","shape":[1]}}"#, data: [0, 0, 0, 0])
        XCTAssertThrowsError(try SafeTensors.read(missing)) { error in
            let error = error as! SafeTensorsError
            XCTAssertEqual(error.key, "w")
            guard case .invalidEntry(let reason) = error.kind else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("data_offsets"), reason)
        }
        let negative = try craft("negative.safetensors", header: #"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}"#)
        assertError(.invalidEntry(reason: "negative dimension in shape [-1]"), key: "w", in: negative) {
            try SafeTensors.read(negative)
        }
        let metadata = try craft("meta.safetensors", header: #"{"__metadata__":{"step":100}}"#)
        XCTAssertThrowsError(try SafeTensors.read(metadata)) { error in
            guard case .invalidMetadata = (error as? SafeTensorsError)?.kind else { return XCTFail("\(error)") }
        }
    }

    func testDataOffsetsOutOfBounds() throws {
        let reversed = try craft("reversed.safetensors", header: #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}}"#,
                                 data: Array(repeating: 0, count: 8))
        assertError(.dataOffsetsOutOfBounds(begin: 8, end: 4, bufferLength: 8), key: "w", in: reversed) {
            try SafeTensors.read(reversed)
        }
        // Past the end with a gap before it: the header is wrong, not the file cut short.
        let far = try craft("far.safetensors", header: #"""
            {"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[100,104]}}
            """#, data: Array(repeating: 0, count: 8))
        assertError(.dataOffsetsOutOfBounds(begin: 100, end: 104, bufferLength: 8), key: "b", in: far) {
            try SafeTensors.read(far)
        }
    }

    /// A model file whose header length is one byte short: the header's padding spaces keep it
    /// valid JSON, so only the coverage check stops every tensor being read one byte early.
    func testHeaderLengthOneByteShortIsRefused() throws {
        let original = try Data(contentsOf: SafeTensorsInteropTests.fixtures.appendingPathComponent("python_reference_f16.safetensors"))
        let declared = original.prefix(8).withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        XCTAssertEqual(original[8 + declared - 1], UInt8(ascii: " "), "the fixture's header must end in padding")
        var mutated = original
        mutated.replaceSubrange(0..<8, with: withUnsafeBytes(of: UInt64(declared - 1).littleEndian, Array.init))
        let url = directory.appendingPathComponent("short-header.safetensors")
        try mutated.write(to: url)
        let dataLength = original.count - 8 - declared
        assertError(.notFullyCovered(coveredBytes: dataLength, bufferLength: dataLength + 1), in: url) {
            try SafeTensors.read(url)
        }
        XCTAssertTrue(try SafeTensors.read(SafeTensorsInteropTests.fixtures.appendingPathComponent("python_reference_f16.safetensors")).names.count > 0)
    }

    func testTrailingBytesAfterTensorsAreRefused() throws {
        let url = try craft("trailing.safetensors", header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
                            data: [0, 0, 0, 0, 7, 7])
        assertError(.notFullyCovered(coveredBytes: 4, bufferLength: 6), in: url) { try SafeTensors.read(url) }
        let empty = try craft("empty-with-data.safetensors", header: "{}", data: [1])
        assertError(.notFullyCovered(coveredBytes: 0, bufferLength: 1), in: empty) { try SafeTensors.read(empty) }
    }

    func testGapsBetweenTensorsAreRefused() throws {
        let gap = try craft("gap.safetensors", header: #"""
            {"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}
            """#, data: Array(repeating: 0, count: 12))
        assertError(.gapBeforeData(begin: 8, expectedBegin: 4), key: "b", in: gap) { try SafeTensors.read(gap) }
        let late = try craft("late.safetensors", header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                             data: Array(repeating: 0, count: 8))
        assertError(.gapBeforeData(begin: 4, expectedBegin: 0), key: "a", in: late) { try SafeTensors.read(late) }
        // An empty tensor may sit at the running offset, not inside another tensor's bytes.
        let inside = try craft("inside.safetensors", header: #"""
            {"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}}
            """#, data: Array(repeating: 0, count: 8))
        assertError(.overlappingData(otherKey: "a"), key: "e", in: inside) { try SafeTensors.read(inside) }
        let packed = try craft("packed.safetensors", header: #"""
            {"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"e":{"dtype":"F32","shape":[0,3],"data_offsets":[4,4]},"b":{"dtype":"F16","shape":[2],"data_offsets":[4,8]}}
            """#, data: Array(repeating: 0, count: 8))
        XCTAssertEqual(try SafeTensors.read(packed).tensor(named: "e").shape, [0, 3])
    }

    /// A zero dimension must not hide a product of the other dimensions that overflows.
    func testShapeOverflowBeforeAZeroDimensionIsRefused() throws {
        let url = try craft("overflow.safetensors",
                            header: #"{"w":{"dtype":"F32","shape":[4611686018427387904,4,0],"data_offsets":[0,0]}}"#)
        assertError(.invalidEntry(reason: "shape [4611686018427387904, 4, 0] is too large"), key: "w", in: url) {
            try SafeTensors.read(url)
        }
    }

    /// A header length past the format's 100 MB limit is refused before the header is decoded
    /// (a sparse file, so the test writes almost nothing).
    func testHeaderLongerThanTheFormatLimitIsRefused() throws {
        let url = directory.appendingPathComponent("huge-header.safetensors")
        let length = UInt64(SafeTensorsHeader.maximumLength + 1)
        try Data(withUnsafeBytes(of: length.littleEndian, Array.init)).write(to: url)
        let handle = try FileHandle(forWritingTo: url)
        try handle.truncate(atOffset: length + 8)
        try handle.close()
        assertError(.headerTooLarge(headerLength: length, limit: SafeTensorsHeader.maximumLength), in: url) {
            try SafeTensors.read(url)
        }
    }

    func testDataSizeNotMatchingShape() throws {
        let url = try craft("size.safetensors", header: #"{"w":{"dtype":"F16","shape":[2,3],"data_offsets":[0,10]}}"#,
                            data: Array(repeating: 0, count: 10))
        assertError(.dataSizeMismatch(shape: [2, 3], dtype: .float16, expectedBytes: 12, actualBytes: 10), key: "w", in: url) {
            try SafeTensors.read(url)
        }
    }

    func testOverlappingData() throws {
        let url = try craft("overlap.safetensors", header: #"""
            {"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}
            """#, data: Array(repeating: 0, count: 12))
        assertError(.overlappingData(otherKey: "a"), key: "b", in: url) { try SafeTensors.read(url) }
    }

    func testTruncatedFile() throws {
        let url = directory.appendingPathComponent("cut.safetensors")
        try SafeTensors.write(["a": Tensor(zeros: [4]), "b": Tensor(zeros: [3])], to: url)
        let whole = try Data(contentsOf: url)
        try whole.dropLast(5).write(to: url)
        assertError(.truncated(expectedBufferLength: 28, actualBufferLength: 23), key: "b", in: url) {
            try SafeTensors.read(url)
        }
    }

    func testMissingKeySuggestsSimilarNames() throws {
        let url = directory.appendingPathComponent("keys.safetensors")
        try SafeTensors.write(["unet.down.0.conv.weight": Tensor(zeros: [1]), "unet.down.0.conv.bias": Tensor(zeros: [1]),
                               "vae.conv.weight": Tensor(zeros: [1])], to: url)
        let file = try SafeTensors.read(url)
        assertError(.missingKey(available: 3, similar: ["unet.down.0.conv.weight", "vae.conv.weight"]),
                    key: "model.down.0.conv.weight", in: url) { try file.tensor(named: "model.down.0.conv.weight") }
        assertError(.missingKey(available: 3, similar: ["unet.down.0.conv.bias"]), key: "bias", in: url) { try file.shape(of: "bias") }
        XCTAssertFalse(file.contains("bias"))
    }

    func testExpectedShapeMismatch() throws {
        let url = directory.appendingPathComponent("shape.safetensors")
        try SafeTensors.write(["w": Tensor(zeros: [3, 2])], to: url)
        let file = try SafeTensors.read(url)
        assertError(.shapeMismatch(expected: [2, 3], actual: [3, 2]), key: "w", in: url) {
            try file.tensor(named: "w", expectedShape: [2, 3])
        }
        XCTAssertEqual(try file.tensor(named: "w", expectedShape: [3, 2]).shape, [3, 2])
    }

    func testIntegerTensorIsNotSilentlyConverted() throws {
        let url = try craft("int.safetensors", header: #"{"step":{"dtype":"I64","shape":[],"data_offsets":[0,8]}}"#,
                            data: [57, 48, 0, 0, 0, 0, 0, 0])
        let file = try SafeTensors.read(url)
        XCTAssertEqual(try file.dtype(of: "step"), .int64)
        assertError(.unsupportedDType(.int64), key: "step", in: url) { try file.tensor(named: "step") }
    }

    func testWriterRejectsReservedNameAndIntegerDType() throws {
        let url = directory.appendingPathComponent("out.safetensors")
        assertError(.invalidName, key: "__metadata__", in: url) {
            try SafeTensors.write(["__metadata__": Tensor(zeros: [1])], to: url)
        }
        assertError(.unsupportedDType(.int32), in: url) {
            try SafeTensors.write(["w": Tensor(zeros: [1])], to: url, dtype: .int32)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: url.path))
    }

    func testSpacePaddedHeaderIsAccepted() throws {
        let url = try craft("padded.safetensors", header: #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}     "#,
                            data: withUnsafeBytes(of: Float(2.5).bitPattern.littleEndian, Array.init))
        XCTAssertEqual(try SafeTensors.read(url).tensor(named: "w").scalars, [2.5])
    }

    func testMissingFileIsAFileError() {
        let url = directory.appendingPathComponent("absent.safetensors")
        XCTAssertThrowsError(try SafeTensors.read(url)) { error in
            XCTAssertEqual((error as? FileError)?.code, ENOENT)
            XCTAssertTrue("\(error)".contains("absent.safetensors"), "\(error)")
        }
    }
}
