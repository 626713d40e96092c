import Foundation

/// Every key path a config type's `init(from:)` asks for, found by running it on a decoder that
/// has no values: each `decodeIfPresent` names its key, and a key whose type is itself keyed (a
/// section such as `model.unet`) is followed into. What the type knows, including the optional
/// keys that no file sets and its re-encoding leaves out because they are nil.
enum ConfigKeyRecorder {
    static func keyPaths<T: Decodable>(of type: T.Type) -> Set<String> {
        let log = KeyLog()
        _ = try? T(from: RecordingDecoder(log: log, path: []))
        return log.paths
    }
}

private final class KeyLog {
    var paths: Set<String> = []
}

/// Thrown where a value would be read: a leaf (number, string, enum, list) has none here.
private struct NoValue: Error {}

private struct RecordingDecoder: Decoder {
    let log: KeyLog
    let path: [String]
    var codingPath: [CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        KeyedDecodingContainer(RecordingContainer<Key>(log: log, path: path))
    }
    func unkeyedContainer() throws -> UnkeyedDecodingContainer { throw NoValue() }
    func singleValueContainer() throws -> SingleValueDecodingContainer { throw NoValue() }
}

private struct RecordingContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let log: KeyLog
    let path: [String]
    var codingPath: [CodingKey] { [] }
    var allKeys: [Key] { [] }

    func record(_ key: Key) -> [String] {
        let full = path + [key.stringValue]
        log.paths.insert(full.joined(separator: "."))
        return full
    }

    /// Every key is absent, so the standard `decodeIfPresent` of a number, string or Bool names
    /// its key here and returns nil.
    func contains(_ key: Key) -> Bool {
        _ = record(key)
        return false
    }

    /// Any other type (a section, an enum, a list) is followed into: a section records its keys.
    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        try? T(from: RecordingDecoder(log: log, path: record(key)))
    }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        _ = record(key)
        throw NoValue()
    }

    func decodeNil(forKey key: Key) throws -> Bool { true }
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { _ = record(key); throw NoValue() }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { _ = record(key); throw NoValue() }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { _ = record(key); throw NoValue() }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { _ = record(key); throw NoValue() }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { _ = record(key); throw NoValue() }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { _ = record(key); throw NoValue() }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { _ = record(key); throw NoValue() }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { _ = record(key); throw NoValue() }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { _ = record(key); throw NoValue() }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { _ = record(key); throw NoValue() }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { _ = record(key); throw NoValue() }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { _ = record(key); throw NoValue() }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { _ = record(key); throw NoValue() }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { _ = record(key); throw NoValue() }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws
        -> KeyedDecodingContainer<NestedKey> {
        KeyedDecodingContainer(RecordingContainer<NestedKey>(log: log, path: record(key)))
    }
    func nestedUnkeyedContainer(forKey key: Key) throws -> UnkeyedDecodingContainer { _ = record(key); throw NoValue() }
    func superDecoder() throws -> Decoder { throw NoValue() }
    func superDecoder(forKey key: Key) throws -> Decoder { RecordingDecoder(log: log, path: record(key)) }
}
