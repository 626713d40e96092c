import Data
import Foundation

/// Where images come from and how they are shaped (the `data` section of a config).
public struct DataConfig: Codable, Equatable, Sendable {
    public enum Kind: String, Codable, Sendable {
        case fashionMNIST = "fashion-mnist"
        case imageFolder = "image-folder"
    }

    public var dataset: Kind = .fashionMNIST
    /// Directory of the IDX files or of the training images.
    public var path: String?
    /// Held-out images (an image folder); Fashion-MNIST uses its t10k split.
    public var validationPath: String?
    public var channels: Int = 1
    public var resolution: Int = 32
    public var fit: ImageFit = .pad
    /// Images per rank per micro-batch.
    public var batchSize: Int = 16
    /// An image folder's captions (stored in the latent cache for text-conditional models).
    public var captions: CaptionOptions?

    public init() {}

    enum CodingKeys: String, CodingKey {
        case dataset, path, channels, resolution, fit, captions
        case validationPath = "validation_path", batchSize = "batch_size"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = DataConfig()
        dataset = try c.decodeIfPresent(Kind.self, forKey: .dataset) ?? d.dataset
        path = try c.decodeIfPresent(String.self, forKey: .path)
        validationPath = try c.decodeIfPresent(String.self, forKey: .validationPath)
        channels = try c.decodeIfPresent(Int.self, forKey: .channels) ?? (dataset == .fashionMNIST ? 1 : 3)
        resolution = try c.decodeIfPresent(Int.self, forKey: .resolution) ?? d.resolution
        fit = try c.decodeIfPresent(ImageFit.self, forKey: .fit) ?? (dataset == .fashionMNIST ? .pad : .resizeCrop)
        batchSize = try c.decodeIfPresent(Int.self, forKey: .batchSize) ?? d.batchSize
        captions = try c.decodeIfPresent(CaptionOptions.self, forKey: .captions)
    }

    /// The training split.
    public func trainingSet() throws -> ImageDataset {
        switch dataset {
        case .fashionMNIST:
            guard captions == nil else {
                throw DataError.mismatch(path: "data.captions", reason: "Fashion-MNIST has no caption files: a text model makes its "
                    + "captions from the labels (data.captions.source: class-templates in the LDM config)")
            }
            guard channels == 1 else {
                throw DataError.mismatch(path: path ?? FashionMNIST.defaultDirectory.path,
                                         reason: "Fashion-MNIST images are grey: data.channels must be 1, got \(channels)")
            }
            return try FashionMNIST(directory: path.map(URL.init(fileURLWithPath:)) ?? FashionMNIST.defaultDirectory,
                                    split: .train, resolution: resolution, fit: fit)
        case .imageFolder:
            guard let path else { throw DataError.unreadable(path: "data.path", reason: "an image-folder dataset needs data.path") }
            return try ImageFolder(root: URL(fileURLWithPath: path), channels: channels, resolution: resolution, fit: fit, captions: captions)
        }
    }

    /// The held-out split, when there is one.
    public func validationSet() throws -> ImageDataset? {
        switch dataset {
        case .fashionMNIST:
            return try FashionMNIST(directory: path.map(URL.init(fileURLWithPath:)) ?? FashionMNIST.defaultDirectory,
                                    split: .test, resolution: resolution, fit: fit)
        case .imageFolder:
            guard let validationPath else { return nil }
            return try ImageFolder(root: URL(fileURLWithPath: validationPath), channels: channels, resolution: resolution, fit: fit,
                                   captions: captions)
        }
    }
}
