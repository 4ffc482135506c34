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
        appendDecimal(Int64(status), to: &line)
        line.append(contentsOf: #","us":"#.utf8)
        appendDecimal(micros, to: &line)
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

    /// Without a String to format it in.
    static func appendDecimal(_ value: Int64, to line: inout [UInt8]) {
        if value < 0 { line.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[19 - count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                count += 1
            } while magnitude > 0
            line.append(contentsOf: buffer[(20 - count)...])
        }
    }

    static func appendQuoted(_ text: String, to line: inout [UInt8]) {
        // Most text (routes, methods, request ids) needs no escape: copied whole, not byte by byte.
        var text = text
        let plain = text.withUTF8 { bytes in
            guard !bytes.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) else { return false }
            line.append(UInt8(ascii: "\""))
            line.append(contentsOf: bytes)
            line.append(UInt8(ascii: "\""))
            return true
        }
        if plain { return }
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
        appendTimestamp(seconds: Int(now.tv_sec), milliseconds: now.tv_nsec / 1_000_000, to: &line)
    }

    /// The calendar date by arithmetic (days to civil date, proleptic Gregorian): glibc's
    /// gmtime_r takes the process-wide time zone lock on every call, which every request
    /// thread's log line would queue on.
    static func appendTimestamp(seconds: Int, milliseconds: Int, to line: inout [UInt8]) {
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthFromMarch = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthFromMarch + 2) / 5 + 1
        let month = monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        // Filled in place and appended once: a byte-at-a-time append checks the array's room 24 times.
        var text: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &text) { buffer in
            func put(_ value: Int, _ count: Int, at offset: Int) {
                var rest = value
                for index in stride(from: offset + count - 1, through: offset, by: -1) {
                    buffer[index] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: rest % 10)
                    rest /= 10
                }
            }
            put(year, 4, at: 0)
            buffer[4] = UInt8(ascii: "-")
            put(month, 2, at: 5)
            buffer[7] = UInt8(ascii: "-")
            put(day, 2, at: 8)
            buffer[10] = UInt8(ascii: "T")
            put(secondOfDay / 3_600, 2, at: 11)
            buffer[13] = UInt8(ascii: ":")
            put(secondOfDay / 60 % 60, 2, at: 14)
            buffer[16] = UInt8(ascii: ":")
            put(secondOfDay % 60, 2, at: 17)
            buffer[19] = UInt8(ascii: ".")
            put(milliseconds, 3, at: 20)
            buffer[23] = UInt8(ascii: "Z")
            line.append(contentsOf: buffer)
        }
    }
}
