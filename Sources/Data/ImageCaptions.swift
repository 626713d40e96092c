import Foundation

/// Where an image folder's captions are (the `data.captions` section of a config, or
/// precompute-latents' --captions): a `.txt` beside each image, or one captions file.
public struct CaptionOptions: Codable, Equatable, Sendable {
    /// A captions file: JSONL (`{"path": …, "caption": …}` per line) or CSV (`path,caption`
    /// with that header), paths relative to the image folder. nil: the `.txt` beside each image.
    public var file: String?
    /// In a `.txt`, the line `key: caption` to use; nil: the first line.
    public var key: String?
    /// Images without a caption get none (trained as the empty caption) instead of an error.
    public var allowMissing = false

    public init(file: String? = nil, key: String? = nil, allowMissing: Bool = false) {
        self.file = file
        self.key = key
        self.allowMissing = allowMissing
    }

    enum CodingKeys: String, CodingKey { case file, key, allowMissing = "allow_missing" }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        file = try c.decodeIfPresent(String.self, forKey: .file)
        key = try c.decodeIfPresent(String.self, forKey: .key)
        allowMissing = try c.decodeIfPresent(Bool.self, forKey: .allowMissing) ?? false
    }
}

/// The captions of an image folder's files, by their path relative to the folder.
public enum ImageCaptions {
    /// One caption per file (nil where none and `allowMissing`); otherwise the images without
    /// a caption are named in the error.
    public static func load(_ options: CaptionOptions, root: URL, files: [String]) throws -> [String?] {
        let captions: [String?]
        if let file = options.file {
            let url = file.hasPrefix("/") ? URL(fileURLWithPath: file) : root.appendingPathComponent(file)
            let table = try readTable(url)
            captions = files.map { table[$0] }
        } else {
            captions = try files.map { try sidecar(for: root.appendingPathComponent($0), key: options.key) }
        }
        let missing = zip(files, captions).filter { $1 == nil }.map(\.0)
        if !missing.isEmpty && !options.allowMissing {
            let where_ = options.file.map { "in \($0)" } ?? "(no .txt beside the image\(options.key.map { " or no '\($0):' line in it" } ?? ""))"
            throw DataError.malformed(path: root.path, reason: "\(missing.count) of \(files.count) images have no caption \(where_): "
                + missing.prefix(5).joined(separator: ", ") + (missing.count > 5 ? ", …" : "")
                + " (set data.captions.allow_missing: true to train them with the empty caption)")
        }
        return captions
    }

    /// The caption in `image`'s `.txt` (same name, extension .txt): its first line, or the
    /// value of the line `key: value`.
    static func sidecar(for image: URL, key: String?) throws -> String? {
        let url = image.deletingPathExtension().appendingPathExtension("txt")
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        guard let text = try? String(contentsOf: url, encoding: .utf8) else {
            throw DataError.unreadable(path: url.path, reason: "not UTF-8 text")
        }
        let lines = text.components(separatedBy: .newlines)
        guard let key else { return lines.first.map { $0.trimmingCharacters(in: .whitespaces) } }
        for line in lines where line.hasPrefix(key + ":") {
            return line.dropFirst(key.count + 1).trimmingCharacters(in: .whitespaces)
        }
        return nil
    }

    /// path → caption from a JSONL or CSV captions file.
    static func readTable(_ url: URL) throws -> [String: String] {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else {
            throw DataError.unreadable(path: url.path, reason: "no such captions file, or not UTF-8 text")
        }
        let lines = text.components(separatedBy: .newlines)
        var table: [String: String] = [:]
        if url.pathExtension.lowercased() == "csv" {
            guard let header = lines.first, parseCSV(header) == ["path", "caption"] else {
                throw DataError.malformed(path: url.path, reason: "the first line must be the header `path,caption`")
            }
            for (n, line) in lines.enumerated().dropFirst() where !line.isEmpty {
                guard let fields = parseCSV(line), fields.count == 2 else {
                    throw DataError.malformed(path: url.path, reason: "line \(n + 1) is not `path,caption` (quote captions with commas)")
                }
                table[fields[0]] = fields[1]
            }
        } else {
            for (n, line) in lines.enumerated() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
                guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                      let path = object["path"] as? String, let caption = object["caption"] as? String else {
                    throw DataError.malformed(path: url.path, reason: "line \(n + 1) is not a JSON object with string \"path\" and \"caption\"")
                }
                table[path] = caption
            }
        }
        return table
    }

    /// One CSV record (RFC 4180 quoting: "a, b" and "" for a quote); nil if a quote is left open.
    static func parseCSV(_ line: String) -> [String]? {
        var fields: [String] = []
        var field = ""
        var quoted = false
        var chars = Array(line.unicodeScalars)[...]
        while let c = chars.popFirst() {
            if quoted {
                if c == "\"" {
                    if chars.first == "\"" { field.unicodeScalars.append("\""); chars.removeFirst() } else { quoted = false }
                } else {
                    field.unicodeScalars.append(c)
                }
            } else if c == "\"" {
                quoted = true
            } else if c == "," {
                fields.append(field)
                field = ""
            } else if c != "\r" {
                field.unicodeScalars.append(c)
            }
        }
        if quoted { return nil }
        fields.append(field)
        return fields
    }
}
