/// Reads a request body as a JSON object through `JSONReader`, the one body parser, refusing
/// with 400 what a handler should never see: anything but UTF-8, nesting deeper than
/// `maxDepth`, anything but an object at the top. Unknown fields are the handler's to ignore.
public enum JSONBody {
    public static let maxDepth = 32

    public static func object(_ request: Request) throws(HTTPError) -> [String: JSONValue] {
        try JSONReader.object(try request.body())
    }

    static func invalid(_ message: String) -> HTTPError {
        HTTPError(.invalidBody, message)
    }

    /// The deepest nesting of arrays and objects, strings skipped; counted before parsing so a
    /// hostile body cannot make the parser recurse.
    static func nestingDepth(_ bytes: [UInt8]) -> Int {
        var depth = 0
        var deepest = 0
        var inString = false
        var escaped = false
        for byte in bytes {
            if inString {
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
                deepest = max(deepest, depth)
            case UInt8(ascii: "]"), UInt8(ascii: "}"): depth -= 1
            default: break
            }
        }
        return deepest
    }
}

/// Collects every problem of a body, so that one 400 lists them all.
public struct FieldErrors {
    public private(set) var problems: [(field: String, problem: String)] = []

    public init() {}

    public mutating func add(_ field: String, _ problem: String) {
        problems.append((field, problem))
    }

    public var isEmpty: Bool { problems.isEmpty }

    /// A required string of 1…`maxLength` characters with no control characters.
    public mutating func string(_ object: [String: JSONValue], _ field: String, path: String? = nil, maxLength: Int, required: Bool = true) -> String? {
        let name = path ?? field
        switch object[field] {
        case .string(let text)?:
            return checked(text, name, maxLength: maxLength)
        case nil, .null?:
            if required { add(name, "is required") }
            return nil
        default:
            add(name, "must be a string")
            return nil
        }
    }

    private mutating func checked(_ text: String, _ name: String, maxLength: Int) -> String? {
        if text.isEmpty { add(name, "must not be empty"); return nil }
        // Printable ASCII, the common case, has one character per byte and no control character.
        let printableASCII = text.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7f }
        if (printableASCII ? text.utf8.count : text.count) > maxLength { add(name, "must be at most \(maxLength) characters"); return nil }
        if !printableASCII && text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            add(name, "must not contain control characters")
            return nil
        }
        return text
    }

    /// Throws 400 `invalid_body` listing every problem, if there is any.
    public func check() throws(HTTPError) {
        guard !problems.isEmpty else { return }
        let list = problems.map { JSONValue.object(["field": .string($0.field), "problem": .string($0.problem)]) }
        throw HTTPError(.invalidBody, "the body has \(problems.count) problem\(problems.count == 1 ? "" : "s")",
                        details: ["fields": .array(list)])
    }
}
