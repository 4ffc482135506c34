import Foundation

/// A catalogue video: what `GET /video/{videoId}` answers and what `POST /video/token` signs.
public struct Video: Sendable, Equatable {
    public var videoId: String
    public var title: String
    public var sources: [Source]

    public struct Source: Sendable, Equatable {
        /// A path below the CDN's address, starting with `/`.
        public var src: String
        public var size: Int
        public var type: String
    }

    static let maxSources = 32
    static let maxLooseIdLength = 128
    static let maxTitleLength = 300
    static let maxSrcLength = 1024
    static let maxTypeLength = 100
    static let maxSize = 1 << 53
    /// Reserved: `/video/token` is the minting route, not a video.
    static let reservedIds: Set<String> = ["token"]

    /// Letters, digits, `.`, `_` and `-`, up to 64: ids go into store keys and URL paths.
    static func isValidId(_ id: String) -> Bool {
        CDNConfiguration.isIdentifier(id) && !reservedIds.contains(id)
    }

    /// Reads a video object, collecting every problem into `errors`. `idFromPath`, when given,
    /// is the id the route names; a body id must then agree with it. `strictId` holds the id to
    /// what a catalogue key allows; a video only signed, never stored, may have any short id.
    static func parse(_ object: [String: Any], at path: String, idFromPath: String?, strictId: Bool = true,
                      errors: inout FieldErrors) -> Video? {
        let problemsBefore = errors.problems.count
        var videoId = idFromPath
        if let given = errors.string(object, "videoId", path: "\(path)videoId", maxLength: strictId ? 64 : maxLooseIdLength,
                                     required: idFromPath == nil) {
            if strictId && !isValidId(given) {
                errors.add("\(path)videoId", "must be 1 to 64 of A-Z a-z 0-9 . _ - and not \(reservedIds.sorted().joined(separator: ", "))")
            } else if let idFromPath, idFromPath != given {
                errors.add("\(path)videoId", "must match the id in the path")
            }
            videoId = given
        }
        let title = errors.string(object, "title", path: "\(path)title", maxLength: maxTitleLength)
        let sources = parseSources(object["sources"], at: "\(path)sources", errors: &errors)
        guard errors.problems.count == problemsBefore, let videoId, let title, let sources else { return nil }
        return Video(videoId: videoId, title: title, sources: sources)
    }

    static func parseSources(_ value: Any?, at path: String, errors: inout FieldErrors) -> [Source]? {
        guard let value, !(value is NSNull) else {
            errors.add(path, "is required")
            return nil
        }
        guard let list = value as? [Any] else {
            errors.add(path, "must be a list of sources")
            return nil
        }
        guard !list.isEmpty else {
            errors.add(path, "must not be empty")
            return nil
        }
        guard list.count <= maxSources else {
            errors.add(path, "must have at most \(maxSources) sources")
            return nil
        }
        var sources: [Source] = []
        var valid = true
        for (index, element) in list.enumerated() {
            let at = "\(path)[\(index)]"
            guard let object = element as? [String: Any] else {
                errors.add(at, "must be an object")
                valid = false
                continue
            }
            let src = errors.string(object, "src", path: "\(at).src", maxLength: maxSrcLength)
            if let src, let problem = srcProblem(src) { errors.add("\(at).src", problem) }
            let size = parseSize(object["size"], at: "\(at).size", errors: &errors)
            let type = errors.string(object, "type", path: "\(at).type", maxLength: maxTypeLength)
            if let src, srcProblem(src) == nil, let size, let type {
                sources.append(Source(src: src, size: size, type: type))
            } else {
                valid = false
            }
        }
        return valid ? sources : nil
    }

    /// Why `src` cannot be a path below a CDN address, or nil. nginx normalises `.`, `..` and
    /// repeated slashes before it checks a link, so a path that normalises differently from
    /// how it was signed could never be served; `?` and `#` would end the path.
    static func srcProblem(_ src: String) -> String? {
        guard src.hasPrefix("/") else { return "must start with /" }
        if src.contains("..") { return "must not contain .." }
        if src.contains("?") || src.contains("#") { return "must not contain ? or #" }
        if src.contains("//") || src.hasSuffix("/") { return "must not contain empty segments or end with /" }
        if src.contains("/./") || src.hasSuffix("/.") { return "must not contain . segments" }
        return nil
    }

    private static func parseSize(_ value: Any?, at path: String, errors: inout FieldErrors) -> Int? {
        guard let value, !(value is NSNull) else {
            errors.add(path, "is required")
            return nil
        }
        guard let size = JSONNumber.integer(value), (0...maxSize).contains(size) else {
            errors.add(path, "must be a whole number from 0 to \(maxSize)")
            return nil
        }
        return size
    }

    /// The JSON of `GET /video/{videoId}`, written directly: it is also the minting answer,
    /// where JSONEncoder's generic machinery would cost more than the signing.
    func json(sourceURLs: [String]? = nil, legacyId: String? = nil) -> [UInt8] {
        var text = "{"
        if let legacyId {
            text += "\"_id\":"
            JSONLogHandler.appendQuoted(legacyId, to: &text)
            text += ","
        }
        text += "\"videoId\":"
        JSONLogHandler.appendQuoted(videoId, to: &text)
        text += ",\"title\":"
        JSONLogHandler.appendQuoted(title, to: &text)
        text += ",\"sources\":["
        for (index, source) in sources.enumerated() {
            if index > 0 { text += "," }
            text += "{\"src\":"
            JSONLogHandler.appendQuoted(sourceURLs?[index] ?? source.src, to: &text)
            text += ",\"size\":\(source.size),\"type\":"
            JSONLogHandler.appendQuoted(source.type, to: &text)
            text += "}"
        }
        text += "]}"
        return Array(text.utf8)
    }
}

/// JSONSerialization hands numbers and booleans back as NSNumber, where `true` also reads as
/// 1 and 1080.5 as 1080; the number's own type tells them apart ("c" is a JSON boolean).
enum JSONNumber {
    static func integer(_ value: Any) -> Int? {
        guard let number = value as? NSNumber else { return nil }
        switch String(cString: number.objCType) {
        case "s", "i", "l", "q": return Int(exactly: number.int64Value)
        case "S", "I", "L", "Q": return Int(exactly: number.uint64Value)
        default: return nil
        }
    }

    static func boolean(_ value: Any) -> Bool? {
        guard let number = value as? NSNumber, String(cString: number.objCType) == "c" else { return nil }
        return number.boolValue
    }
}
