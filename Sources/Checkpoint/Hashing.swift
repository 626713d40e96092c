import Foundation

/// Streaming XXH64 (xxHash, 64-bit variant, as specified in Cyan4973/xxHash doc/xxhash_spec.md).
///
/// Used for shard checksums and weight fingerprints: it runs at memory bandwidth, is stable
/// across platforms (defined on little-endian byte order) and its values can be checked with
/// any xxHash implementation (`xxhsum -H1`, Python `xxhash.xxh64`). Not a cryptographic hash.
///
///     var h = XXH64()
///     h.update(chunk1); h.update(chunk2)
///     let digest = h.digest()   // same as XXH64.hash(chunk1 + chunk2)
public struct XXH64: Sendable {
    static let prime1: UInt64 = 0x9E37_79B1_85EB_CA87
    static let prime2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    static let prime3: UInt64 = 0x1656_67B1_9E37_79F9
    static let prime4: UInt64 = 0x85EB_CA77_C2B2_AE63
    static let prime5: UInt64 = 0x27D4_EB2F_1656_67C5

    public let seed: UInt64
    private var v1, v2, v3, v4: UInt64
    private var totalLength: UInt64 = 0
    /// Bytes of an incomplete 32-byte stripe, waiting for more input.
    private var pending: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    private var pendingCount = 0

    public init(seed: UInt64 = 0) {
        self.seed = seed
        v1 = seed &+ XXH64.prime1 &+ XXH64.prime2
        v2 = seed &+ XXH64.prime2
        v3 = seed
        v4 = seed &- XXH64.prime1
    }

    /// One-shot hash of a byte buffer.
    public static func hash(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
        var h = XXH64(seed: seed)
        h.update(bytes)
        return h.digest()
    }

    public static func hash(_ data: Data, seed: UInt64 = 0) -> UInt64 {
        data.withUnsafeBytes { hash($0, seed: seed) }
    }

    public static func hash(_ string: String, seed: UInt64 = 0) -> UInt64 {
        hash(Data(string.utf8), seed: seed)
    }

    public mutating func update(_ data: Data) {
        data.withUnsafeBytes { update($0) }
    }

    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard var p = bytes.baseAddress, bytes.count > 0 else { return }
        var remaining = bytes.count
        totalLength &+= UInt64(remaining)

        // Complete a stripe left over from the previous call first.
        if pendingCount > 0 {
            let take = min(32 - pendingCount, remaining)
            withUnsafeMutableBytes(of: &pending) { stripe in
                stripe.baseAddress!.advanced(by: pendingCount).copyMemory(from: p, byteCount: take)
            }
            pendingCount += take
            p += take
            remaining -= take
            guard pendingCount == 32 else { return }
            let stripe = pending
            withUnsafeBytes(of: stripe) { consumeStripe($0.baseAddress!) }
            pendingCount = 0
        }

        // Whole stripes straight from the caller's memory.
        if remaining >= 32 {
            var a = v1, b = v2, c = v3, d = v4
            while remaining >= 32 {
                a = XXH64.round(a, XXH64.read64(p))
                b = XXH64.round(b, XXH64.read64(p + 8))
                c = XXH64.round(c, XXH64.read64(p + 16))
                d = XXH64.round(d, XXH64.read64(p + 24))
                p += 32
                remaining -= 32
            }
            v1 = a; v2 = b; v3 = c; v4 = d
        }

        if remaining > 0 {
            withUnsafeMutableBytes(of: &pending) { stripe in
                stripe.baseAddress!.copyMemory(from: p, byteCount: remaining)
            }
            pendingCount = remaining
        }
    }

    /// The hash of everything passed to `update` so far. Does not change the state, so more
    /// input may follow.
    public func digest() -> UInt64 {
        var h: UInt64
        if totalLength >= 32 {
            h = XXH64.rotl(v1, 1) &+ XXH64.rotl(v2, 7) &+ XXH64.rotl(v3, 12) &+ XXH64.rotl(v4, 18)
            h = XXH64.mergeRound(h, v1)
            h = XXH64.mergeRound(h, v2)
            h = XXH64.mergeRound(h, v3)
            h = XXH64.mergeRound(h, v4)
        } else {
            h = seed &+ XXH64.prime5
        }
        h &+= totalLength

        let stripe = pending
        return withUnsafeBytes(of: stripe) { raw -> UInt64 in
            var p = raw.baseAddress!
            var remaining = pendingCount
            while remaining >= 8 {
                h ^= XXH64.round(0, XXH64.read64(p))
                h = XXH64.rotl(h, 27) &* XXH64.prime1 &+ XXH64.prime4
                p += 8
                remaining -= 8
            }
            if remaining >= 4 {
                h ^= UInt64(UInt32(littleEndian: p.loadUnaligned(as: UInt32.self))) &* XXH64.prime1
                h = XXH64.rotl(h, 23) &* XXH64.prime2 &+ XXH64.prime3
                p += 4
                remaining -= 4
            }
            while remaining > 0 {
                h ^= UInt64(p.load(as: UInt8.self)) &* XXH64.prime5
                h = XXH64.rotl(h, 11) &* XXH64.prime1
                p += 1
                remaining -= 1
            }
            return XXH64.avalanche(h)
        }
    }

    private mutating func consumeStripe(_ p: UnsafeRawPointer) {
        v1 = XXH64.round(v1, XXH64.read64(p))
        v2 = XXH64.round(v2, XXH64.read64(p + 8))
        v3 = XXH64.round(v3, XXH64.read64(p + 16))
        v4 = XXH64.round(v4, XXH64.read64(p + 24))
    }

    @inline(__always) static func read64(_ p: UnsafeRawPointer) -> UInt64 {
        UInt64(littleEndian: p.loadUnaligned(as: UInt64.self))
    }

    @inline(__always) static func rotl(_ x: UInt64, _ r: UInt64) -> UInt64 {
        (x << r) | (x >> (64 - r))
    }

    @inline(__always) static func round(_ acc: UInt64, _ input: UInt64) -> UInt64 {
        rotl(acc &+ input &* prime2, 31) &* prime1
    }

    @inline(__always) static func mergeRound(_ acc: UInt64, _ value: UInt64) -> UInt64 {
        (acc ^ round(0, value)) &* prime1 &+ prime4
    }

    @inline(__always) static func avalanche(_ hash: UInt64) -> UInt64 {
        var h = hash
        h ^= h >> 33
        h &*= prime2
        h ^= h >> 29
        h &*= prime3
        h ^= h >> 32
        return h
    }

    /// Hex spelling used in manifests and checkpoint metadata: 16 lowercase digits.
    public static func hexString(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
