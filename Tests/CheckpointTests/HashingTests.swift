import XCTest
@testable import Checkpoint

final class HashingTests: XCTestCase {
    /// Reference values from the xxHash inside libzstd (Tests/Fixtures/generate_xxh64_vectors.sh):
    /// (length, seed, XXH64 of bytes i = (i * 131 + 7) mod 256).
    static let vectors: [(Int, UInt64, UInt64)] = [
        (0, 0x0000000000000000, 0xEF46DB3751D8E999),
        (1, 0x0000000000000000, 0xA96C7F0CE858BBB7),
        (3, 0x0000000000000000, 0xBED43740EE6332BB),
        (4, 0x0000000000000000, 0xFA212AE44B3BB23D),
        (5, 0x0000000000000000, 0xD339DCC9AC8E6776),
        (7, 0x0000000000000000, 0x2744460DD675D2C0),
        (8, 0x0000000000000000, 0x994B676B71CE94DD),
        (9, 0x0000000000000000, 0x572B84C18B983AF8),
        (15, 0x0000000000000000, 0x09E6451ED2FF8B1D),
        (16, 0x0000000000000000, 0x94AD0095E72B24D5),
        (17, 0x0000000000000000, 0x1464F2EFF23B5FE1),
        (31, 0x0000000000000000, 0x6711D55E306B5D8F),
        (32, 0x0000000000000000, 0x07F7B8E3BC5D6E25),
        (33, 0x0000000000000000, 0x09F85EEB4E1CBE9F),
        (63, 0x0000000000000000, 0xB7C9968C066CB6A5),
        (64, 0x0000000000000000, 0x50D4159A0411632E),
        (65, 0x0000000000000000, 0xD277176BFF863EFC),
        (100, 0x0000000000000000, 0x9DDADA11D3DC2D8F),
        (1000, 0x0000000000000000, 0x0BF0BDBCC82EB373),
        (4096, 0x0000000000000000, 0xCF05ADF75ACA30CF),
        (0, 0x9E3779B97F4A7C15, 0xC4349FC93C010000),
        (1, 0x9E3779B97F4A7C15, 0x585882422A6165E7),
        (3, 0x9E3779B97F4A7C15, 0x45FA1406538FA168),
        (4, 0x9E3779B97F4A7C15, 0xA65107F22943365A),
        (5, 0x9E3779B97F4A7C15, 0xF51EDA3A20DE9B88),
        (7, 0x9E3779B97F4A7C15, 0xC9B637E2C4599DE2),
        (8, 0x9E3779B97F4A7C15, 0xCE592D5F53E192EC),
        (9, 0x9E3779B97F4A7C15, 0x5495AA796DE8AB73),
        (15, 0x9E3779B97F4A7C15, 0x47A857D1F90C35E1),
        (16, 0x9E3779B97F4A7C15, 0x3F8FEA7C86A04013),
        (17, 0x9E3779B97F4A7C15, 0xE5044D205F3D2F74),
        (31, 0x9E3779B97F4A7C15, 0x24C4E99AB0404B5E),
        (32, 0x9E3779B97F4A7C15, 0x046E99BBDA1A814B),
        (33, 0x9E3779B97F4A7C15, 0xD7FE2BFEE6E4CDED),
        (63, 0x9E3779B97F4A7C15, 0xBD457F9EA47180C8),
        (64, 0x9E3779B97F4A7C15, 0xA768F350A8E4FCF6),
        (65, 0x9E3779B97F4A7C15, 0xFE99AB21E40D4B0C),
        (100, 0x9E3779B97F4A7C15, 0x35546BD9A4779AE4),
        (1000, 0x9E3779B97F4A7C15, 0x3ECB5D7B5E7C64CF),
        (4096, 0x9E3779B97F4A7C15, 0x1ED4FA0C97932CBF),
    ]

    static func input(_ count: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 * 131 + 7) }
    }

    func testPublishedVectors() {
        XCTAssertEqual(XXH64.hash(""), 0xEF46_DB37_51D8_E999)
        XCTAssertEqual(XXH64.hash("abc"), 0x44BC_2CF5_AD77_0999)
    }

    func testOneShotMatchesReferenceImplementation() {
        for (length, seed, expected) in Self.vectors {
            let bytes = Self.input(length)
            let got = bytes.withUnsafeBytes { XXH64.hash($0, seed: seed) }
            XCTAssertEqual(got, expected, "length \(length) seed \(seed)")
        }
    }

    /// Every way of cutting the input into two or three updates gives the one-shot value, which
    /// exercises the pending-stripe bookkeeping at all offsets within a stripe.
    func testStreamingSplitsMatchOneShot() {
        for (length, seed, expected) in Self.vectors where length <= 100 {
            let bytes = Self.input(length)
            for cut in 0...length {
                var h = XXH64(seed: seed)
                h.update(Array(bytes[..<cut]))
                h.update(Array(bytes[cut...]))
                XCTAssertEqual(h.digest(), expected, "length \(length) cut \(cut)")
            }
            var h = XXH64(seed: seed)
            for byte in bytes { h.update([byte]) }
            XCTAssertEqual(h.digest(), expected, "byte-at-a-time length \(length)")
        }
    }

    func testDigestDoesNotConsumeState() {
        let bytes = Self.input(1000)
        var h = XXH64()
        h.update(Array(bytes[..<500]))
        _ = h.digest()
        h.update(Array(bytes[500...]))
        XCTAssertEqual(h.digest(), 0x0BF0_BDBC_C82E_B373)
    }

    func testHexString() {
        XCTAssertEqual(XXH64.hexString(0x44BC_2CF5_AD77_0999), "44bc2cf5ad770999")
        XCTAssertEqual(XXH64.hexString(0xff), "00000000000000ff")
    }
}
