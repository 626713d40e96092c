import Data
import Foundation
import LatentCache
import Tensor

/// Where a text-conditional run's captions come from (`data.captions`).
public struct CaptionConfig: Codable, Equatable, Sendable {
    public enum Source: String, Codable, Sendable {
        /// The captions stored in the latent cache (an image folder's .txt files or a
        /// captions file, read by precompute-latents).
        case cache
        /// Made from the class label: a phrasing per sample, e.g. "a photo of an ankle boot".
        case classTemplates = "class-templates"
    }

    public var source: Source = .cache
    /// Class names for class-templates, by label; default Fashion-MNIST's.
    public var classNames: [String]?
    /// Train on an empty caption (the null condition) where the cache has none, instead of
    /// stopping with the sample's name.
    public var allowMissing = false

    public init() {}

    enum CodingKeys: String, CodingKey { case source, classNames = "class_names", allowMissing = "allow_missing" }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        source = try c.decodeIfPresent(Source.self, forKey: .source) ?? .cache
        classNames = try c.decodeIfPresent([String].self, forKey: .classNames)
        allowMissing = try c.decodeIfPresent(Bool.self, forKey: .allowMissing) ?? false
    }

    public var names: [String] { classNames ?? FashionMNIST.names }
}

/// Captions for a batch of cached latents: those the cache stores, or ones made from the class
/// label with one of several phrasings chosen per sample from (seed, dataset index, step), so
/// every rank makes the same caption for a sample and a resumed run the same as an unbroken one.
public struct CaptionSource: Sendable {
    public let config: CaptionConfig
    public let seed: UInt64
    let cache: String

    /// The phrasings training sees.
    public static let trainingTemplates = ["a photo of {}", "an image of {}", "{}", "a grey photo of {}",
                                           "a product photo of {}", "a low resolution photo of {}"]
    /// Phrasings kept out of training, for samples that show whether the model reads the class
    /// name rather than memorising whole captions.
    public static let heldOutTemplates = ["a picture of {}", "a photograph showing {}"]

    public init(config: CaptionConfig, seed: UInt64, cache: String) {
        self.config = config
        self.seed = seed
        self.cache = cache
    }

    /// "a t-shirt/top", "an ankle boot": lower-cased, with its article.
    public static func withArticle(_ name: String) -> String {
        let lower = name.lowercased()
        return (lower.first.map { "aeiou".contains($0) } ?? false ? "an " : "a ") + lower
    }

    public static func caption(template: String, className: String) -> String {
        template.replacingOccurrences(of: "{}", with: withArticle(className))
    }

    /// The caption of each sample of `batch` at training step `step`.
    public func captions(for batch: LatentBatch, step: Int) throws -> [String] {
        switch config.source {
        case .classTemplates:
            let names = config.names
            return try zip(batch.labels, batch.indices).map { label, index in
                guard label >= 0 && label < names.count else {
                    throw ConfigError.cache(cache, "sample \(index) has label \(label), but data.captions.class_names names "
                        + "\(names.count) classes (class-templates captions need a label per sample)")
                }
                var g = RandomGenerator(seed: seed).derived(UInt64(index), UInt64(step))
                let template = Self.trainingTemplates[g.nextInt(below: Self.trainingTemplates.count)]
                return Self.caption(template: template, className: names[label])
            }
        case .cache:
            guard let stored = batch.captions else {
                throw ConfigError.cache(cache, "the cache stores no captions, but the model is text-conditional: precompute "
                    + "the latents from captioned images, or set data.captions.source: class-templates")
            }
            return try zip(stored, batch.indices).map { caption, index in
                if let caption { return caption }
                guard config.allowMissing else {
                    throw ConfigError.cache(cache, "sample \(index) has no caption (set data.captions.allow_missing: true to "
                        + "train it with the empty caption)")
                }
                return ""
            }
        }
    }
}
