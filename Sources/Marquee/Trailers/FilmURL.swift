import Crypto
import Foundation

/// Which Viaplay film URLs a client may ask about. The route makes the server fetch on a
/// client's word, so anything outside this shape is refused before any I/O.
public struct FilmURLPolicy: Sendable, Equatable {
    /// Lower-case host names, matched exactly (never as a prefix or suffix).
    public var hosts: Set<String>
    /// Path prefixes such as `/pc-se/film/`: each starts and ends with a slash.
    public var pathPrefixes: [String]
    public var maxSlugLength: Int
    /// Longer strings are refused before they are looked at.
    public static let maxURLLength = 2048

    public static let defaultHosts = ["content.viaplay.se", "content.viaplay.dk", "content.viaplay.no", "content.viaplay.fi"]
    public static let defaultPathPrefixes = ["/pc-se/film/", "/pc-dk/film/", "/pc-no/film/", "/pc-fi/film/"]

    public init(hosts: some Sequence<String> = FilmURLPolicy.defaultHosts,
                pathPrefixes: [String] = FilmURLPolicy.defaultPathPrefixes, maxSlugLength: Int = 100) {
        self.hosts = Set(hosts.map { $0.lowercased() })
        self.pathPrefixes = pathPrefixes
        self.maxSlugLength = maxSlugLength
    }
}

/// Why a string is not an allowed film URL; the message is meant for the client.
public struct InvalidFilmURL: Error, Equatable, CustomStringConvertible {
    public var reason: String
    public var description: String { reason }

    init(_ reason: String) {
        self.reason = reason
    }
}

/// An allowed Viaplay film URL in its one normalised spelling: `https://<host><prefix><slug>`,
/// host lower-cased, no query, fragment or trailing slash. The normalised string is what the
/// store key is derived from and what the answer reports back.
public struct FilmURL: Sendable, Equatable {
    public let normalised: String
    /// Hex SHA-256 of `normalised`: fixed length, so any allowed URL fits the store's key limit.
    public let digest: String
    private let hostLength: Int

    private static let scheme = Array("https://".utf8)

    /// `normalised` is `https://`, a host of `hostLength` bytes, then the path.
    private init(normalised bytes: [UInt8], hostLength: Int) {
        self.normalised = String(decoding: bytes, as: UTF8.self)
        self.digest = Self.hexDigest(of: bytes)
        self.hostLength = hostLength
    }

    public var host: String { String(normalised.utf8.dropFirst(Self.scheme.count).prefix(hostLength))! }
    /// The prefix and the slug, e.g. `/pc-se/film/arrival-2016`.
    public var path: String { String(normalised.utf8.dropFirst(Self.scheme.count + hostLength))! }

    /// Where the final answer for this URL is stored.
    public var storeKey: String { TrailerKeys.answer(self) }

    /// The document to fetch: never the client's string, but the allow-listed origin (or the
    /// configured stand-in for every allowed host) followed by the normalised path.
    public func contentURL(viaplayBase: String?) -> URL {
        URL(string: (viaplayBase ?? "https://\(host)") + path)!
    }

    /// Checks `text` against `policy` and normalises it; the hot path of every trailer request,
    /// so it works on the bytes and allocates only the results.
    public static func parse(_ text: String?, policy: FilmURLPolicy) throws(InvalidFilmURL) -> FilmURL {
        guard let text, !text.isEmpty else {
            throw InvalidFilmURL("the url parameter is required: pass ?url=<the Viaplay URL of a film>")
        }
        let bytes = Array(text.utf8)
        guard bytes.count <= FilmURLPolicy.maxURLLength else {
            throw InvalidFilmURL("the url is longer than \(FilmURLPolicy.maxURLLength) characters")
        }
        if bytes.contains(UInt8(ascii: "\\")) { throw InvalidFilmURL("backslashes are not allowed in the url") }
        guard bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw InvalidFilmURL("the url must be printable ASCII without spaces")
        }

        let schemeEnd = bytes.firstIndex(of: UInt8(ascii: ":")) ?? bytes.endIndex
        let scheme = bytes[..<schemeEnd].map(lowercased)
        let https = scheme.elementsEqual("https".utf8)
        guard https || scheme.elementsEqual("http".utf8), bytes[schemeEnd...].starts(with: "://".utf8) else {
            throw InvalidFilmURL("the url must start with https://")
        }
        guard https else { throw InvalidFilmURL("only https URLs are allowed") }

        let authorityStart = schemeEnd + 3
        let authorityEnd = bytes[authorityStart...].firstIndex {
            $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#")
        } ?? bytes.endIndex
        let authority = bytes[authorityStart..<authorityEnd]
        guard !authority.isEmpty else { throw InvalidFilmURL("the url has no host") }
        if authority.contains(UInt8(ascii: "@")) { throw InvalidFilmURL("user information (user@) is not allowed in the url") }
        if authority.contains(UInt8(ascii: "[")) || authority.contains(UInt8(ascii: "]")) {
            throw InvalidFilmURL("IP literals are not allowed as the host")
        }
        if authority.contains(UInt8(ascii: ":")) { throw InvalidFilmURL("ports are not allowed in the url") }
        if authority.contains(UInt8(ascii: "%")) { throw InvalidFilmURL("percent-encoding is not allowed in the host") }
        // Digits and dots only (`127.0.0.1`, `2130706433`): resolvers read these as addresses.
        if authority.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || $0 == UInt8(ascii: ".") }) {
            throw InvalidFilmURL("IP literals are not allowed as the host")
        }
        var normalised = scheme + "://".utf8
        normalised.reserveCapacity(bytes.count + 8)
        normalised += authority.lazy.map(lowercased)
        let host = String(decoding: normalised[Self.scheme.count...], as: UTF8.self)
        guard policy.hosts.contains(host) else {
            throw InvalidFilmURL("the host \(host.prefix(100)) is not an allowed Viaplay content host")
        }

        let pathEnd = bytes[authorityEnd...].firstIndex { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") } ?? bytes.endIndex
        var path = bytes[authorityEnd..<pathEnd]
        if path.contains(UInt8(ascii: "%")) {
            throw InvalidFilmURL("percent-encoded characters (such as %2e or %2f) are not allowed in the path")
        }
        if path.count > 1, path.last == UInt8(ascii: "/") { path = path.dropLast() }
        guard let prefix = policy.pathPrefixes.first(where: { path.starts(with: $0.utf8) }) else {
            throw InvalidFilmURL("the path must be a film path: \(policy.pathPrefixes.map { "\($0)<slug>" }.joined(separator: ", "))")
        }
        let slug = path.dropFirst(prefix.utf8.count)
        guard !slug.isEmpty else { throw InvalidFilmURL("the film slug is missing after \(prefix)") }
        guard slug.count <= policy.maxSlugLength else {
            throw InvalidFilmURL("the film slug is longer than \(policy.maxSlugLength) characters")
        }
        guard slug.allSatisfy(isSlugByte) else {
            throw InvalidFilmURL("the film slug may only hold a-z, 0-9 and -")
        }
        normalised += path
        return FilmURL(normalised: normalised, hostLength: authority.count)
    }

    private static func lowercased(_ byte: UInt8) -> UInt8 {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte | 0x20 : byte
    }

    private static func isSlugByte(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
            || byte == UInt8(ascii: "-")
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    static func hexDigest(of bytes: [UInt8]) -> String {
        let digest = SHA256.hash(data: bytes)
        var hex = [UInt8]()
        hex.reserveCapacity(64)
        for byte in digest {
            hex.append(hexDigits[Int(byte >> 4)])
            hex.append(hexDigits[Int(byte & 0x0F)])
        }
        return String(decoding: hex, as: UTF8.self)
    }
}
