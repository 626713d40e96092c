import Foundation

/// A folder of PNG images (searched recursively, in sorted path order). When every image sits
/// in a first-level subfolder, the subfolder names are the classes. With `captions`, each
/// image's caption comes from its `.txt` or a captions file (`ImageCaptions`).
public struct ImageFolder: ImageDataset {
    public let root: URL
    public let files: [String]
    public let channels: Int
    public let height: Int
    public let width: Int
    public let fit: ImageFit
    public let classNames: [String]?
    private let labels: [Int]?
    private let captions: [String?]?
    public let identity: String

    public init(root: URL, channels: Int, resolution: Int, fit: ImageFit = .resizeCrop, captions: CaptionOptions? = nil) throws {
        guard channels == 1 || channels == 3 else {
            throw DataError.mismatch(path: root.path, reason: "channels must be 1 (grey) or 3 (RGB), got \(channels)")
        }
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root.path, isDirectory: &isDir), isDir.boolValue else {
            throw DataError.unreadable(path: root.path, reason: "not a directory")
        }
        guard let enumerator = FileManager.default.enumerator(atPath: root.path) else {
            throw DataError.unreadable(path: root.path, reason: "cannot list directory")
        }
        var found: [String] = []
        for case let rel as String in enumerator where rel.lowercased().hasSuffix(".png") { found.append(rel) }
        found.sort()
        guard !found.isEmpty else { throw DataError.empty(path: root.path, reason: "no .png images found") }
        self.root = root
        self.files = found
        self.channels = channels
        self.height = resolution
        self.width = resolution
        self.fit = fit
        let folders = found.map { $0.split(separator: "/").count > 1 ? String($0.split(separator: "/")[0]) : nil }
        if folders.allSatisfy({ $0 != nil }) {
            let names = Array(Set(folders.compactMap { $0 })).sorted()
            let index = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($0.element, $0.offset) })
            classNames = names
            labels = folders.map { index[$0!]! }
        } else {
            classNames = nil
            labels = nil
        }
        // Identity: the file list with sizes, so a changed folder is noticed.
        var digest = UInt64(0xcbf2_9ce4_8422_2325)
        for rel in found {
            let size = (try? FileManager.default.attributesOfItem(atPath: root.appendingPathComponent(rel).path)[.size] as? Int) ?? -1
            for byte in Array("\(rel):\(size);".utf8) { digest = (digest ^ UInt64(byte)) &* 0x100_0000_01b3 }
        }
        // Captions are part of what the data is: other captions, another identity.
        let loaded = try captions.map { try ImageCaptions.load($0, root: root, files: found) }
        for caption in loaded ?? [] {
            for byte in Array((caption.map { "\($0)\u{1}" } ?? "\u{0}").utf8) { digest = (digest ^ UInt64(byte)) &* 0x100_0000_01b3 }
        }
        self.captions = loaded
        identity = "image-folder/\(root.lastPathComponent)/\(found.count)/\(String(digest, radix: 16))" + (loaded == nil ? "" : "+captions")
    }

    public var count: Int { files.count }

    public func image(at index: Int) throws -> Image8 {
        let url = root.appendingPathComponent(files[index])
        return try PNG.read(url, channels: channels).fitted(width: width, height: height, fit: fit)
    }

    public func label(at index: Int) -> Int? { labels?[index] }
    public var hasCaptions: Bool { captions != nil }
    public func caption(at index: Int) -> String? { captions?[index] ?? nil }
}
