/// User ids and stream ids: 1 to 64 of `A-Z a-z 0-9 . _ -`, and not only dots.
/// The charset keeps them safe as store keys, path segments and log fields without escaping,
/// and covers the earlier service's ids (`001`, UUIDs) and streams (`stream_100`).
enum Identifier {
    static let maxLength = 64

    /// Why `text` is not a valid id, or nil when it is.
    static func problem(_ text: String) -> String? {
        let bytes = text.utf8
        if bytes.isEmpty { return "must not be empty" }
        if bytes.count > maxLength { return "must be at most \(maxLength) characters" }
        guard bytes.allSatisfy(isAllowed) else { return "may contain only letters A-Z a-z, digits, '.', '_' and '-'" }
        if bytes.allSatisfy({ $0 == UInt8(ascii: ".") }) { return "must not consist of dots only" }
        return nil
    }

    private static func isAllowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
            true
        default:
            false
        }
    }

    /// A user id from the path, refused with 400 before it reaches the store.
    static func user(_ request: Request, _ name: String = "id") throws(HTTPError) -> String {
        try validated(request.parameters[name] ?? "", what: "user id")
    }

    /// A stream id from the path.
    static func stream(_ request: Request, _ name: String = "stream") throws(HTTPError) -> String {
        try validated(request.parameters[name] ?? "", what: "stream id")
    }

    static func validated(_ text: String, what: String) throws(HTTPError) -> String {
        if let problem = problem(text) {
            throw HTTPError(.invalidId, "the \(what) \(problem)")
        }
        return text
    }

    /// The form streams are compared in: the earlier service lowercased them too.
    static func streamKey(_ stream: String) -> String {
        stream.lowercased()
    }
}
