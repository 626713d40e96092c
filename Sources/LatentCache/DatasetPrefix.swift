import Data

/// The first `count` images of a dataset (quick runs and tests). Its identity names the
/// limit, so a cache of a prefix is never taken for a cache of the whole dataset.
public struct DatasetPrefix: ImageDataset {
    public let base: ImageDataset
    public let count: Int

    public init(_ base: ImageDataset, count: Int) {
        precondition(count >= 0, "DatasetPrefix: count \(count) is negative")
        self.base = base
        self.count = min(count, base.count)
    }

    public var identity: String { "\(base.identity)[:\(count)]" }
    public var channels: Int { base.channels }
    public var height: Int { base.height }
    public var width: Int { base.width }
    public var classNames: [String]? { base.classNames }
    public func image(at index: Int) throws -> Image8 {
        precondition(index >= 0 && index < count, "DatasetPrefix: index \(index) outside 0..<\(count)")
        return try base.image(at: index)
    }
    public func label(at index: Int) -> Int? { base.label(at: index) }
    public var hasCaptions: Bool { base.hasCaptions }
    public func caption(at index: Int) -> String? { base.caption(at: index) }
}
