import Foundation
import Logging

/// One JSON object per line on stdout, which journald keeps as the message: the time, the
/// level, the message, the worker's pid and the metadata. Lines go through `LogOutput`.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    private let label: String

    public init(label: String, level: Logger.Level = .info) {
        self.label = label
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        // Built as bytes, not as a String: this runs once per request, and String appends,
        // interpolation and a merged, re-sorted dictionary were a fifth of a worker's CPU.
        var line = Self.lineStart(level: event.level, message: event.message.description)
        if metadata.isEmpty, let extra = event.metadata {
            Self.appendFields(extra, to: &line)
        } else {
            var merged = metadata
            if let extra = event.metadata { merged.merge(extra) { _, new in new } }
            Self.appendFields(merged, to: &line)
        }
        line.append(contentsOf: "}\n".utf8)
        LogOutput.shared.write(line)
    }

    /// The per-request line, the same as `logger.info("request", metadata: ...)` would write,
    /// without a metadata dictionary to build, sort and cast on every request.
    static func writeRequestLine(method: String, route: String, status: Int, micros: Int64, requestId: String? = nil) {
        var line = lineStart(level: .info, message: "request")
        line.append(contentsOf: #","method":"#.utf8)
        appendQuoted(method, to: &line)
        line.append(contentsOf: #","route":"#.utf8)
        appendQuoted(route, to: &line)
        line.append(contentsOf: #","status":"#.utf8)
        line.append(contentsOf: String(status).utf8)
        line.append(contentsOf: #","us":"#.utf8)
        line.append(contentsOf: String(micros).utf8)
        if let requestId {
            line.append(contentsOf: #",""#.utf8)
            line.append(contentsOf: Request.requestIdKey.utf8)
            line.append(contentsOf: #"":"#.utf8)
            appendQuoted(requestId, to: &line)
        }
        line.append(contentsOf: "}\n".utf8)
        LogOutput.shared.write(line)
    }

    /// `{"ts":…,"level":…,"msg":…,"pid":…`: what every line starts with.
    private static func lineStart(level: Logger.Level, message: String) -> [UInt8] {
        var line: [UInt8] = []
        line.reserveCapacity(256)
        line.append(contentsOf: #"{"ts":""#.utf8)
        appendTimestamp(to: &line)
        line.append(contentsOf: #"","level":""#.utf8)
        line.append(contentsOf: level.rawValue.utf8)
        line.append(contentsOf: #"","msg":"#.utf8)
        appendQuoted(message, to: &line)
        line.append(contentsOf: pidField)
        return line
    }

    private static let pidField = Array(",\"pid\":\(getpid())".utf8)

    private static func appendFields(_ fields: Logger.Metadata, to line: inout [UInt8]) {
        for key in fields.keys.sorted() {
            line.append(UInt8(ascii: ","))
            appendQuoted(key, to: &line)
            line.append(UInt8(ascii: ":"))
            append(fields[key]!, to: &line)
        }
    }

    private static func append(_ value: Logger.Metadata.Value, to line: inout [UInt8]) {
        switch value {
        case .string(let text):
            appendQuoted(text, to: &line)
        case .stringConvertible(let convertible):
            if let number = convertible as? Int {
                line.append(contentsOf: String(number).utf8)
            } else if let number = convertible as? any BinaryInteger {
                line.append(contentsOf: "\(number)".utf8)
            } else {
                appendQuoted(convertible.description, to: &line)
            }
        case .array(let values):
            line.append(UInt8(ascii: "["))
            for (index, element) in values.enumerated() {
                if index > 0 { line.append(UInt8(ascii: ",")) }
                append(element, to: &line)
            }
            line.append(UInt8(ascii: "]"))
        case .dictionary(let values):
            line.append(UInt8(ascii: "{"))
            for (index, key) in values.keys.sorted().enumerated() {
                if index > 0 { line.append(UInt8(ascii: ",")) }
                appendQuoted(key, to: &line)
                line.append(UInt8(ascii: ":"))
                append(values[key]!, to: &line)
            }
            line.append(UInt8(ascii: "}"))
        }
    }

    static func appendQuoted(_ text: String, to line: inout [UInt8]) {
        line.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): line.append(contentsOf: #"\""#.utf8)
            case UInt8(ascii: "\\"): line.append(contentsOf: #"\\"#.utf8)
            case UInt8(ascii: "\n"): line.append(contentsOf: #"\n"#.utf8)
            case UInt8(ascii: "\r"): line.append(contentsOf: #"\r"#.utf8)
            case UInt8(ascii: "\t"): line.append(contentsOf: #"\t"#.utf8)
            case 0..<0x20:
                line.append(contentsOf: #"\u00"#.utf8)
                line.append(hexDigits[Int(byte >> 4)])
                line.append(hexDigits[Int(byte & 0xf)])
            default:
                line.append(byte)
            }
        }
        line.append(UInt8(ascii: "\""))
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// RFC 3339 in UTC with milliseconds, e.g. 2026-11-23T21:33:28.650Z.
    private static func appendTimestamp(to line: inout [UInt8]) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var parts = tm()
        var seconds = now.tv_sec
        gmtime_r(&seconds, &parts)
        func digits(_ value: Int, _ count: Int, then separator: UInt8?) {
            var divisor = 1
            for _ in 1..<count { divisor *= 10 }
            while divisor > 0 {
                line.append(UInt8(ascii: "0") + UInt8(value / divisor % 10))
                divisor /= 10
            }
            if let separator { line.append(separator) }
        }
        digits(Int(parts.tm_year) + 1900, 4, then: UInt8(ascii: "-"))
        digits(Int(parts.tm_mon) + 1, 2, then: UInt8(ascii: "-"))
        digits(Int(parts.tm_mday), 2, then: UInt8(ascii: "T"))
        digits(Int(parts.tm_hour), 2, then: UInt8(ascii: ":"))
        digits(Int(parts.tm_min), 2, then: UInt8(ascii: ":"))
        digits(Int(parts.tm_sec), 2, then: UInt8(ascii: "."))
        digits(now.tv_nsec / 1_000_000, 3, then: UInt8(ascii: "Z"))
    }
}
