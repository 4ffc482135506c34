import Crypto
import FastCGI
import Foundation

/// An answer rendered once per refresh and stored whole in the shared store: the body with its
/// validators, so that a page load is one store read and the bytes go out as they are.
struct Representation: Sendable, Equatable {
    /// When the data in `body` was asked of the upstream, in milliseconds since the epoch.
    var refreshedAt: UInt64
    var stale: Bool
    /// A strong validator: a digest of the body, quoted.
    var etag: String
    /// `refreshedAt` as an HTTP date.
    var lastModified: String
    var body: [UInt8]

    init(body: [UInt8], refreshedAt: UInt64, stale: Bool) {
        self.body = body
        self.refreshedAt = refreshedAt
        self.stale = stale
        let digest = SHA256.hash(data: body)
        etag = "\"" + digest.prefix(16).map { String(format: "%02x", $0) }.joined() + "\""
        lastModified = Self.httpDate(refreshedAt)
    }

    private init(refreshedAt: UInt64, stale: Bool, etag: String, lastModified: String, body: [UInt8]) {
        self.refreshedAt = refreshedAt
        self.stale = stale
        self.etag = etag
        self.lastModified = lastModified
        self.body = body
    }

    /// How long a client may keep an answer: never past `freshness` after the refresh, and not
    /// at all once the data is stale.
    static func maxAge(refreshedAt: UInt64, now: UInt64, stale: Bool, freshness: Duration) -> Int {
        guard !stale else { return 0 }
        let freshUntil = refreshedAt + UInt64(freshness.components.seconds) * 1000
        guard freshUntil > now else { return 0 }
        return Int((freshUntil - now) / 1000)
    }

    /// The stored answer for `request`: 304 when its If-None-Match names this body.
    func response(to request: Request, contentType: String, now: UInt64, freshness: Duration) -> FastCGIResponse {
        let maxAge = Self.maxAge(refreshedAt: refreshedAt, now: now, stale: stale, freshness: freshness)
        let cacheControl = (name: "Cache-Control", value: "public, max-age=" + String(maxAge))
        if let condition = request.header("If-None-Match"), Self.matches(condition, etag: etag) {
            return FastCGIResponse(status: 304, headers: [(name: "ETag", value: etag), (name: "Last-Modified", value: lastModified), cacheControl])
        }
        return FastCGIResponse(status: 200, headers: [
            (name: "Content-Type", value: contentType), (name: "ETag", value: etag), (name: "Last-Modified", value: lastModified), cacheControl,
        ], body: body)
    }

    /// If-None-Match compares weakly (RFC 9110 13.1.2): `W/` is ignored, `*` matches anything.
    static func matches(_ condition: String, etag: String) -> Bool {
        condition.split(separator: ",").contains { candidate in
            var tag = candidate.trimmingCharacters(in: .whitespaces)
            if tag.hasPrefix("W/") { tag.removeFirst(2) }
            return tag == "*" || tag == etag
        }
    }

    // MARK: Stored form

    private static let formatVersion: UInt8 = 1

    /// version, refreshedAt (8 bytes, little-endian), stale, then the ETag and the date each
    /// behind a one-byte length, then the body.
    func encoded() -> [UInt8] {
        let etagBytes = Array(etag.utf8)
        let dateBytes = Array(lastModified.utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(12 + etagBytes.count + dateBytes.count + body.count)
        bytes.append(Self.formatVersion)
        withUnsafeBytes(of: refreshedAt.littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(stale ? 1 : 0)
        bytes.append(UInt8(etagBytes.count))
        bytes.append(contentsOf: etagBytes)
        bytes.append(UInt8(dateBytes.count))
        bytes.append(contentsOf: dateBytes)
        bytes.append(contentsOf: body)
        return bytes
    }

    static func decode(_ bytes: [UInt8]) -> Representation? {
        bytes.withUnsafeBytes(decode)
    }

    /// Decodes straight from the store's memory, so the body is copied once.
    static func decode(_ bytes: UnsafeRawBufferPointer) -> Representation? {
        guard bytes.count >= 12, bytes[0] == formatVersion else { return nil }
        let refreshedAt = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 1, as: UInt64.self))
        var offset = 10
        func field() -> String? {
            guard offset < bytes.count else { return nil }
            let count = Int(bytes[offset])
            guard offset + 1 + count <= bytes.count else { return nil }
            defer { offset += 1 + count }
            return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[(offset + 1)..<(offset + 1 + count)]), as: UTF8.self)
        }
        guard let etag = field(), let lastModified = field() else { return nil }
        return Representation(refreshedAt: refreshedAt, stale: bytes[9] != 0, etag: etag, lastModified: lastModified,
                              body: Array(UnsafeRawBufferPointer(rebasing: bytes[offset...])))
    }

    /// RFC 9110 IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
    static func httpDate(_ millis: UInt64) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter.string(from: Date(timeIntervalSince1970: Double(millis) / 1000))
    }
}
