import CPNG
import Foundation

/// An 8-bit image in interleaved HWC layout, with 1 (grey) or 3 (RGB) channels.
public struct Image8: Equatable {
    public var width: Int
    public var height: Int
    public var channels: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        precondition(channels == 1 || channels == 3, "images have 1 or 3 channels, got \(channels)")
        precondition(pixels.count == width * height * channels,
                     "\(width)x\(height)x\(channels) image needs \(width * height * channels) bytes, got \(pixels.count)")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }
}

/// PNG decoding and encoding through libpng's simplified API.
public enum PNG {
    /// Reads any PNG (grey, RGB, palette, with alpha, 16-bit), converting it to `channels`
    /// (1 = grey, 3 = RGB); alpha is composited over black. `nil` keeps the file's own
    /// colour type (grey stays grey, everything else becomes RGB).
    public static func read(_ url: URL, channels: Int? = nil) throws -> Image8 {
        guard FileManager.default.isReadableFile(atPath: url.path) else {
            throw DataError.unreadable(path: url.path, reason: "no such file or not readable")
        }
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        guard png_image_begin_read_from_file(&image, url.path) != 0 else {
            throw DataError.unreadable(path: url.path, reason: "not a readable PNG (\(message(of: image)))")
        }
        defer { png_image_free(&image) }
        let fileIsColour = image.format & UInt32(PNG_FORMAT_FLAG_COLOR) != 0
        let outChannels = channels ?? (fileIsColour ? 3 : 1)
        precondition(outChannels == 1 || outChannels == 3, "PNG.read: channels must be 1 or 3")
        image.format = outChannels == 3 ? UInt32(PNG_FORMAT_RGB) : UInt32(PNG_FORMAT_GRAY)
        let width = Int(image.width), height = Int(image.height)
        // Sized by the header, so checked against the file first: deflate expands at most
        // ~1032:1, and 1-bit palette pixels become 3 bytes here (24 per packed byte).
        let fileSize = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? 0
        let (pixelCount, overflow) = width.multipliedReportingOverflow(by: height * outChannels)
        guard !overflow, pixelCount <= 24 * 1032 * max(fileSize, 1) else {
            throw DataError.malformed(path: url.path, reason: "header says \(width)×\(height) pixels, "
                + "more than a \(fileSize)-byte PNG can hold")
        }
        var pixels = [UInt8](repeating: 0, count: pixelCount)
        var black = png_color(red: 0, green: 0, blue: 0)
        let ok = pixels.withUnsafeMutableBytes { buffer in
            png_image_finish_read(&image, &black, buffer.baseAddress, 0, nil)
        }
        guard ok != 0 else {
            throw DataError.malformed(path: url.path, reason: "PNG decoding failed (\(message(of: image)))")
        }
        return Image8(width: width, height: height, channels: outChannels, pixels: pixels)
    }

    /// Writes an 8-bit grey or RGB PNG.
    public static func write(_ img: Image8, to url: URL) throws {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        image.width = UInt32(img.width)
        image.height = UInt32(img.height)
        image.format = img.channels == 3 ? UInt32(PNG_FORMAT_RGB) : UInt32(PNG_FORMAT_GRAY)
        let ok = img.pixels.withUnsafeBytes { buffer in
            png_image_write_to_file(&image, url.path, 0, buffer.baseAddress, 0, nil)
        }
        defer { png_image_free(&image) }
        guard ok != 0 else {
            throw DataError.unwritable(path: url.path, reason: "PNG encoding or writing failed (\(message(of: image)))")
        }
    }

    private static func message(of image: png_image) -> String {
        var m = image.message
        return withUnsafeBytes(of: &m) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}
