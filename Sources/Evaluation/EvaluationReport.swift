import Foundation

/// A metadata value in a report: the JSON scalars, so numbers stay numbers. One number
/// case (as in JSON itself) so every value reads back exactly as it was written — JSON
/// cannot tell 2 from 2.0. Integers up to 2^53 are exact.
public enum ReportValue: Codable, Equatable, Sendable, ExpressibleByStringLiteral,
    ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral, ExpressibleByBooleanLiteral {
    case string(String)
    case number(Double)
    case bool(Bool)

    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .number(Double(value)) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let b = try? container.decode(Bool.self) { self = .bool(b) }
        else if let d = try? container.decode(Double.self) { self = .number(d) }
        else if let s = try? container.decode(String.self) { self = .string(s) }
        else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "metadata value must be a string, number or bool")
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case let .string(s): try container.encode(s)
        case let .number(d):
            guard d.isFinite else {
                throw EncodingError.invalidValue(d, .init(codingPath: encoder.codingPath, debugDescription: "metadata numbers must be finite"))
            }
            try container.encode(d)
        case let .bool(b): try container.encode(b)
        }
    }
}

/// The metrics of one evaluation run (one split at one training step), as written to
/// `metrics.json` next to the checkpoints: pretty-printed with sorted keys so reports diff
/// cleanly, and replaced atomically so a reader never sees half a report.
public struct EvaluationReport: Codable, Equatable, Sendable {
    /// The split the images came from, e.g. "validation" or "test".
    public var split: String
    /// The training step of the weights that were evaluated.
    public var step: Int
    /// Number of images scored, over all ranks.
    public var imageCount: Int
    public var metrics: [String: MetricSummary]
    /// Anything else the caller wants on record: model, sampler steps, guidance scale, seed…
    public var metadata: [String: ReportValue]
    /// Set-level distances in feature spaces (e.g. the reconstruction Fréchet distance).
    public var distances: [FeatureDistances]?

    public init(split: String, step: Int, imageCount: Int, metrics: [String: MetricSummary],
                metadata: [String: ReportValue] = [:], distances: [FeatureDistances]? = nil) {
        self.split = split
        self.step = step
        self.imageCount = imageCount
        self.metrics = metrics
        self.metadata = metadata
        self.distances = distances
    }

    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        var data = try encoder.encode(self)
        data.append(0x0A)  // end the file with a newline, as text files should
        return data
    }

    /// Writes the report atomically to `url` (its directory must exist).
    public func write(to url: URL) throws {
        try AtomicWrite.write(jsonData(), to: url)
    }

    public static func read(from url: URL) throws -> EvaluationReport {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw EvaluationReportError.unreadable(path: url.path, reason: "\(error)")
        }
        do { return try JSONDecoder().decode(EvaluationReport.self, from: data) } catch {
            throw EvaluationReportError.unreadable(path: url.path, reason: "\(error)")
        }
    }
}

public enum EvaluationReportError: Error, CustomStringConvertible {
    case unreadable(path: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason): return "cannot read evaluation report \(path): \(reason)"
        }
    }
}
