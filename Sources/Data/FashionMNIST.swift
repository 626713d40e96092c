import Foundation

/// Fashion-MNIST from its IDX files (the Debian package `dataset-fashion-mnist` installs them
/// in /usr/share/datasets/fashion-mnist). 28×28 grey, 10 classes; `train` has 60,000 images
/// and `test` (t10k, the held-out split) 10,000.
public struct FashionMNIST: ImageDataset {
    public enum Split: String, Codable, Sendable { case train, test }

    public static let defaultDirectory = URL(fileURLWithPath: "/usr/share/datasets/fashion-mnist")
    public static let names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

    public let split: Split
    public let height: Int
    public let width: Int
    public let fit: ImageFit
    public var channels: Int { 1 }
    public var count: Int { labels.count }
    public var classNames: [String]? { FashionMNIST.names }
    public var identity: String { "fashion-mnist/\(split.rawValue)/\(count)" }

    /// FNV-1a over the pixels and labels (47 MB for the training split: tens of milliseconds).
    public func contentDigest() -> String {
        var digest: UInt64 = 0xcbf2_9ce4_8422_2325
        for bytes in [pixels, labels] {
            bytes.withUnsafeBufferPointer { buffer in
                for byte in buffer { digest = (digest ^ UInt64(byte)) &* 0x100_0000_01b3 }
            }
        }
        return "fnv1a64:" + String(digest, radix: 16)
    }

    private let pixels: [UInt8]
    private let labels: [UInt8]
    private let sourceSide: Int

    /// Loads a split, delivering images at `resolution` (28 is native; 32 pads with black).
    public init(directory: URL = FashionMNIST.defaultDirectory, split: Split, resolution: Int = 32,
                fit: ImageFit = .pad) throws {
        let prefix = split == .train ? "train" : "t10k"
        func file(_ kind: String) throws -> URL {
            for name in ["\(prefix)-\(kind)-ubyte.gz", "\(prefix)-\(kind)-ubyte"] {
                let url = directory.appendingPathComponent(name)
                if FileManager.default.fileExists(atPath: url.path) { return url }
            }
            throw DataError.unreadable(path: directory.appendingPathComponent("\(prefix)-\(kind)-ubyte.gz").path,
                                       reason: "Fashion-MNIST file missing (install the Debian package dataset-fashion-mnist, or run Launch/setup.sh)")
        }
        let imagesURL = try file("images-idx3"), labelsURL = try file("labels-idx1")
        let images = try IDXFile(contentsOf: imagesURL)
        let labels = try IDXFile(contentsOf: labelsURL)
        guard images.dimensions.count == 3, images.dimensions[1] == images.dimensions[2] else {
            throw DataError.malformed(path: imagesURL.path, reason: "expected N×side×side images, got \(images.dimensions)")
        }
        guard labels.dimensions == [images.dimensions[0]] else {
            throw DataError.mismatch(path: labelsURL.path, reason: "\(labels.dimensions) labels for \(images.dimensions[0]) images")
        }
        if let bad = labels.bytes.first(where: { $0 >= 10 }) {
            throw DataError.malformed(path: labelsURL.path, reason: "label \(bad) outside 0..<10")
        }
        self.split = split
        self.pixels = images.bytes
        self.labels = labels.bytes
        self.sourceSide = images.dimensions[1]
        self.height = resolution
        self.width = resolution
        self.fit = fit
    }

    public func image(at index: Int) throws -> Image8 {
        precondition(index >= 0 && index < count, "Fashion-MNIST index \(index) out of 0..<\(count)")
        let n = sourceSide * sourceSide
        let img = Image8(width: sourceSide, height: sourceSide, channels: 1,
                         pixels: Array(pixels[index * n ..< (index + 1) * n]))
        return img.fitted(width: width, height: height, fit: fit)
    }

    public func label(at index: Int) -> Int? { Int(labels[index]) }
}
