import Foundation
import Tensor

/// A labelled or unlabelled collection of images, every one delivered at the same size.
public protocol ImageDataset {
    /// A stable identity: what the data is (used to refuse caches and checkpoints made from
    /// other data).
    var identity: String { get }
    var count: Int { get }
    var channels: Int { get }
    var height: Int { get }
    var width: Int { get }
    /// Class names when the data is labelled.
    var classNames: [String]? { get }
    /// The image at `index`, already at `width`×`height` with `channels` channels.
    func image(at index: Int) throws -> Image8
    func label(at index: Int) -> Int?
    /// What tells two copies of the data apart (compared across ranks before training): a
    /// digest of the content where that is cheap; by default the identity.
    func contentDigest() -> String
    /// Whether the data has captions (a text-conditional model's condition).
    var hasCaptions: Bool { get }
    /// The caption of image `index` (nil: none).
    func caption(at index: Int) -> String?
}

extension ImageDataset {
    public var hasCaptions: Bool { false }
    public func caption(at index: Int) -> String? { nil }
}

extension ImageDataset {
    public func contentDigest() -> String { identity }

    /// Images `indices` as a [N, C, H, W] tensor scaled to [−1, 1], and their labels
    /// (−1 where unlabelled). Images are decoded in parallel.
    public func batch(_ indices: [Int]) throws -> (images: Tensor, labels: [Int]) {
        let plane = height * width, size = channels * plane
        let out = Tensor(uninitialized: [indices.count, channels, height, width])
        let o = out.pointer
        var failure: Error?
        let lock = NSLock()
        Parallel.forEach(indices.count) { n in
            do {
                let img = try image(at: indices[n])
                img.pixels.withUnsafeBufferPointer { px in
                    let dst = o + n * size
                    for c in 0..<channels {
                        for p in 0..<plane { dst[c * plane + p] = Float(px[p * channels + c]) / 127.5 - 1 }
                    }
                }
            } catch {
                lock.lock(); if failure == nil { failure = error }; lock.unlock()
            }
        }
        if let failure { throw failure }
        return (out, indices.map { label(at: $0) ?? -1 })
    }
}
