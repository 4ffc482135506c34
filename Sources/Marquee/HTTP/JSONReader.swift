/// Reads JSON (RFC 8259) into `JSONValue`, for bodies on hot paths: JSONSerialization costs a
/// request more than the rest of its work (Foundation objects, then bridging them back), and its
/// NSNumber cannot tell `true` from 1. Whole numbers that fit an Int become `.int`, every other
/// number `.double`. Refuses anything but UTF-8 (a byte order mark, UTF-16 or UTF-32, a NUL
/// byte), nesting deeper than `JSONBody.maxDepth`, and numbers too large for a Double.
public enum JSONReader {
    public enum Failure: Error, Sendable {
        case notUTF8
        case byteOrderMark
        case nulByte
        case invalid
        case tooDeep
    }

    public static func parse(_ bytes: [UInt8]) throws(Failure) -> JSONValue {
        // RFC 8259 §8.1: UTF-8 without a byte order mark. UTF-16 and UTF-32 text of JSON's
        // ASCII punctuation always holds NUL bytes, so refusing NUL refuses them whatever their BOM.
        if bytes.starts(with: [0xef, 0xbb, 0xbf]) || bytes.starts(with: [0xfe, 0xff]) || bytes.starts(with: [0xff, 0xfe]) {
            throw .byteOrderMark
        }
        guard !bytes.contains(0) else { throw .nulByte }
        guard String(validating: bytes, as: UTF8.self) != nil else { throw .notUTF8 }
        return try bytes.withUnsafeBufferPointer { buffer throws(Failure) -> JSONValue in
            var parser = Parser(bytes: buffer)
            return try parser.document()
        }
    }

    /// A request body as a JSON object, or 400 `invalid_body` saying what is wrong.
    public static func object(_ body: [UInt8]) throws(HTTPError) -> [String: JSONValue] {
        guard !body.isEmpty else { throw JSONBody.invalid("the body is empty; send a JSON object") }
        let value: JSONValue
        do {
            value = try parse(body)
        } catch .notUTF8 {
            throw JSONBody.invalid("the body is not valid UTF-8")
        } catch .byteOrderMark {
            throw JSONBody.invalid("the body starts with a byte order mark; send UTF-8 JSON without one")
        } catch .nulByte {
            throw JSONBody.invalid("the body holds a NUL byte; send UTF-8 JSON (UTF-16 and UTF-32 are refused)")
        } catch .tooDeep {
            throw JSONBody.invalid("the JSON is nested deeper than \(JSONBody.maxDepth) levels")
        } catch {
            throw JSONBody.invalid("the body is not valid JSON")
        }
        guard case .object(let object) = value else { throw JSONBody.invalid("the body must be a JSON object") }
        return object
    }

    private struct Parser {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0
        var depth = 0

        init(bytes: UnsafeBufferPointer<UInt8>) {
            self.bytes = bytes
        }

        mutating func document() throws(Failure) -> JSONValue {
            let value = try self.value()
            skipWhitespace()
            guard index == bytes.count else { throw .invalid }
            return value
        }

        private mutating func value() throws(Failure) -> JSONValue {
            skipWhitespace()
            guard index < bytes.count else { throw .invalid }
            switch bytes[index] {
            case UInt8(ascii: "{"): return try object()
            case UInt8(ascii: "["): return try array()
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            default: return try number()
            }
        }

        private mutating func object() throws(Failure) -> JSONValue {
            try enter()
            var members: [String: JSONValue] = [:]
            skipWhitespace()
            if take(UInt8(ascii: "}")) {
                depth -= 1
                return .object(members)
            }
            repeat {
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw .invalid }
                let key = try string()
                skipWhitespace()
                guard take(UInt8(ascii: ":")) else { throw .invalid }
                members[key] = try value()
                skipWhitespace()
            } while take(UInt8(ascii: ","))
            guard take(UInt8(ascii: "}")) else { throw .invalid }
            depth -= 1
            return .object(members)
        }

        private mutating func array() throws(Failure) -> JSONValue {
            try enter()
            var elements: [JSONValue] = []
            skipWhitespace()
            if take(UInt8(ascii: "]")) {
                depth -= 1
                return .array(elements)
            }
            repeat {
                elements.append(try value())
                skipWhitespace()
            } while take(UInt8(ascii: ","))
            guard take(UInt8(ascii: "]")) else { throw .invalid }
            depth -= 1
            return .array(elements)
        }

        private mutating func enter() throws(Failure) {
            depth += 1
            guard depth <= JSONBody.maxDepth else { throw .tooDeep }
            index += 1
        }

        /// A string from its opening quote; the bytes are known to be UTF-8 already.
        private mutating func string() throws(Failure) -> String {
            index += 1
            let start = index
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
                    index += 1
                    return text
                }
                if byte == UInt8(ascii: "\\") { return try escapedString(from: start) }
                guard byte >= 0x20 else { throw .invalid }
                index += 1
            }
            throw .invalid
        }

        private mutating func escapedString(from start: Int) throws(Failure) -> String {
            var output = Array(UnsafeBufferPointer(rebasing: bytes[start..<index]))
            while index < bytes.count {
                let byte = bytes[index]
                index += 1
                switch byte {
                case UInt8(ascii: "\""):
                    return String(decoding: output, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    guard index < bytes.count else { throw .invalid }
                    let escape = bytes[index]
                    index += 1
                    switch escape {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): output.append(escape)
                    case UInt8(ascii: "b"): output.append(0x08)
                    case UInt8(ascii: "f"): output.append(0x0c)
                    case UInt8(ascii: "n"): output.append(0x0a)
                    case UInt8(ascii: "r"): output.append(0x0d)
                    case UInt8(ascii: "t"): output.append(0x09)
                    case UInt8(ascii: "u"):
                        var scalar = try hexQuad()
                        if (0xd800..<0xdc00).contains(scalar) {
                            guard take(UInt8(ascii: "\\")), take(UInt8(ascii: "u")) else { throw .invalid }
                            let low = try hexQuad()
                            guard (0xdc00..<0xe000).contains(low) else { throw .invalid }
                            scalar = 0x10000 + ((scalar - 0xd800) << 10) + (low - 0xdc00)
                        }
                        guard let unicode = Unicode.Scalar(scalar) else { throw .invalid }
                        UTF8.encode(unicode) { output.append($0) }
                    default:
                        throw .invalid
                    }
                default:
                    guard byte >= 0x20 else { throw .invalid }
                    output.append(byte)
                }
            }
            throw .invalid
        }

        private mutating func hexQuad() throws(Failure) -> UInt32 {
            guard index + 4 <= bytes.count else { throw .invalid }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = bytes[index]
                let digit: UInt8
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                default: throw .invalid
                }
                value = value << 4 | UInt32(digit)
                index += 1
            }
            return value
        }

        private mutating func number() throws(Failure) -> JSONValue {
            let start = index
            _ = take(UInt8(ascii: "-"))
            guard index < bytes.count else { throw .invalid }
            if bytes[index] == UInt8(ascii: "0") {
                index += 1
            } else {
                guard digits() > 0 else { throw .invalid }
            }
            var whole = true
            if take(UInt8(ascii: ".")) {
                whole = false
                guard digits() > 0 else { throw .invalid }
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
                whole = false
                index += 1
                if !take(UInt8(ascii: "+")) { _ = take(UInt8(ascii: "-")) }
                guard digits() > 0 else { throw .invalid }
            }
            let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
            if whole, let integer = Int(text) { return .int(integer) }
            guard let double = Double(text), double.isFinite else { throw .invalid }
            return .double(double)
        }

        private mutating func digits() -> Int {
            let start = index
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
            return index - start
        }

        private mutating func literal(_ word: StaticString) throws(Failure) {
            let count = word.utf8CodeUnitCount
            guard index + count <= bytes.count else { throw .invalid }
            for offset in 0..<count where bytes[index + offset] != word.utf8Start[offset] { throw .invalid }
            index += count
        }

        private mutating func take(_ byte: UInt8) -> Bool {
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }

        private mutating func skipWhitespace() {
            while index < bytes.count {
                switch bytes[index] {
                case 0x20, 0x09, 0x0a, 0x0d: index += 1
                default: return
                }
            }
        }
    }
}
