import Crypto

/// A catalogue video: what `GET /video/{videoId}` answers and what `POST /video/token` signs.
public struct Video: Sendable, Equatable {
    public var videoId: String
    public var title: String
    public var sources: [Source]
    /// The earlier service's database id, answered as `_id`: its clients read it. Kept as
    /// imported or put; the catalogue gives a video without one `generatedLegacyId`.
    public var legacyId: String?

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
    static let maxLegacyIdLength = 64
    /// Reserved: `/video/token` is the minting route, not a video.
    static let reservedIds: Set<String> = ["token"]

    /// A stable `_id` for a video that came without one: 24 hex digits like the earlier
    /// service's MongoDB ids, derived from `videoId`, so every worker and every re-import
    /// answers the same one.
    static func generatedLegacyId(for videoId: String) -> String {
        SHA256.hash(data: Array("marquee-video:\(videoId)".utf8)).prefix(12).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }

    /// Letters, digits, `.`, `_` and `-`, up to 64: ids go into store keys and URL paths.
    static func isValidId(_ id: String) -> Bool {
        CDNConfiguration.isIdentifier(id) && !reservedIds.contains(id)
    }

    /// Reads a video object, collecting every problem into `errors`. `idFromPath`, when given,
    /// is the id the route names; a body id must then agree with it. `strictId` holds the id to
    /// what a catalogue key allows; a video only signed, never stored, may have any short id.
    static func parse(_ object: [String: JSONValue], at path: String, idFromPath: String?, strictId: Bool = true,
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
        let legacyId = errors.string(object, "_id", path: "\(path)_id", maxLength: maxLegacyIdLength, required: false)
        guard errors.problems.count == problemsBefore, let videoId, let title, let sources else { return nil }
        return Video(videoId: videoId, title: title, sources: sources, legacyId: legacyId)
    }

    static func parseSources(_ value: JSONValue?, at path: String, errors: inout FieldErrors) -> [Source]? {
        guard case .array(let list)? = value else {
            errors.add(path, value == nil || value == .null ? "is required" : "must be a list of sources")
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
        let problemsBefore = errors.problems.count
        var sources: [Source] = []
        for (index, element) in list.enumerated() {
            let at = "\(path)[\(index)]"
            guard case .object(let object) = element else {
                errors.add(at, "must be an object")
                continue
            }
            var src = errors.string(object, "src", path: "\(at).src", maxLength: maxSrcLength)
            if let given = src, let problem = srcProblem(given) {
                errors.add("\(at).src", problem)
                src = nil
            }
            let size = parseSize(object["size"], at: "\(at).size", errors: &errors)
            let type = errors.string(object, "type", path: "\(at).type", maxLength: maxTypeLength)
            if let src, let size, let type { sources.append(Source(src: src, size: size, type: type)) }
        }
        return errors.problems.count == problemsBefore ? sources : nil
    }

    /// Why `src` cannot be a path below a CDN address, or nil. nginx normalises `.`, `..` and
    /// repeated slashes before it checks a link, so a path that normalises differently from
    /// how it was signed could never be served; `?` and `#` would end the path. A `src` is the
    /// decoded path (the link percent-encodes it), so `%` and `\` are refused with them: an
    /// encoded `%2e%2e` or `%2f` would otherwise reach an edge that decodes it once more.
    static func srcProblem(_ src: String) -> String? {
        guard src.utf8.first == UInt8(ascii: "/") else { return "must start with /" }
        // One pass, tracking the segment so far: this runs for every source of every mint.
        var previous: UInt8 = 0
        var segmentLength = 0
        var segmentIsDot = false
        for byte in src.utf8.dropFirst() {
            switch byte {
            case UInt8(ascii: "/"):
                if segmentLength == 0 { return "must not contain empty segments or end with /" }
                if segmentIsDot && segmentLength == 1 { return "must not contain . segments" }
                segmentLength = 0
            case UInt8(ascii: "?"), UInt8(ascii: "#"):
                return "must not contain ? or #"
            case UInt8(ascii: "%"), UInt8(ascii: "\\"):
                return "must not contain % or \\ (give the path decoded)"
            case UInt8(ascii: ".") where previous == UInt8(ascii: "."):
                return "must not contain .."
            default:
                segmentIsDot = segmentLength == 0 && byte == UInt8(ascii: ".")
                segmentLength += 1
                previous = byte
                continue
            }
            previous = byte
        }
        if segmentLength == 0 { return "must not contain empty segments or end with /" }
        if segmentIsDot && segmentLength == 1 { return "must not contain . segments" }
        return nil
    }

    /// JSON has one kind of number: `1080.0` is the whole number 1080, as JSON Schema's
    /// `integer` (the description's) counts it, so it is taken as one.
    static func parseSize(_ value: JSONValue?, at path: String, errors: inout FieldErrors) -> Int? {
        var whole = value
        if case .double(let number)? = value, number.rounded(.towardZero) == number, (0...Double(maxSize)).contains(number) {
            whole = .int(Int(number))
        }
        guard case .int(let size)? = whole, (0...maxSize).contains(size) else {
            errors.add(path, value == nil || value == .null ? "is required" : "must be a whole number from 0 to \(maxSize)")
            return nil
        }
        return size
    }

    /// The JSON of `GET /video/{videoId}`, and with `sourceURLs` the minting answer, where
    /// JSONEncoder's generic machinery would cost more than the signing. `_id` comes first
    /// (sorted order), which lets the catalogue tell at a glance whether a stored answer has one.
    func json(sourceURLs: [String]? = nil, legacyId: String? = nil) -> [UInt8] {
        var json = JSONWriter()
        json.object { json in
            if let legacyId = legacyId ?? self.legacyId {
                json.key("_id")
                json.string(legacyId)
            }
            json.key("sources")
            json.array(sources.indices) { json, index in
                let source = sources[index]
                json.object { json in
                    json.key("size")
                    json.int(source.size)
                    json.key("src")
                    json.string(sourceURLs?[index] ?? source.src)
                    json.key("type")
                    json.string(source.type)
                }
            }
            json.key("title")
            json.string(title)
            json.key("videoId")
            json.string(videoId)
        }
        return json.bytes
    }
}
