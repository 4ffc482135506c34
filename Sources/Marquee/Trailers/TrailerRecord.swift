import FastCGI
import Foundation

/// The three shapes the trailer routes answer in.
public enum TrailerShape: Sendable {
    /// `GET /api/v1/trailers`: the whole answer.
    case full
    /// `GET /api/trailer`: `{"trailerUrl": "https://youtu.be/<first key>"}`.
    case firstTrailerURL
    /// `GET /api/v1/trailer/`: `["https://www.youtube.com/watch?v=<key>", …]`.
    case trailerURLs
}

/// The final answer for one film URL as it sits in the store, ready to serve: a status line,
/// then the body of every route shape, one compact JSON document per line, so that a hit is
/// sliced out of the stored bytes and never re-encoded, and an operator can read the entry.
///
///     200\n<full answer>\n<first trailer URL answer>\n<trailer URLs answer>
///     404\n<error body>
///
/// The full answer always ends in `"stale":false}`, so a stale serve swaps that tail only.
public struct TrailerRecord: Sendable {
    public let status: Int
    public let bytes: [UInt8]

    public init?(_ bytes: [UInt8]) {
        guard bytes.count > 4, bytes[3] == Self.newline else { return nil }
        if bytes.starts(with: Self.foundLine) {
            status = 200
        } else if bytes.starts(with: Self.notFoundLine) {
            status = 404
        } else {
            return nil
        }
        self.bytes = bytes
    }

    public struct Answer: Encodable {
        public var url: String
        public var imdbId: String
        public var tmdbId: Int
        public var trailers: [Trailer]
        public var updatedAt: String
    }

    /// `answer` must list at least one trailer: without one, the film is not found.
    static func found(_ answer: Answer) throws -> TrailerRecord {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var full = Array(try encoder.encode(answer))
        full.removeLast()
        full += Array(#","stale":false}"#.utf8)
        let first = Array(try encoder.encode(["trailerUrl": answer.trailers[0].shortURL]))
        let urls = Array(try encoder.encode(answer.trailers.map(\.url)))
        return TrailerRecord(Self.foundLine + full + [Self.newline] + first + [Self.newline] + urls)!
    }

    static func notFound(url: String, reason: String) -> TrailerRecord {
        let body = HTTPError(.notFound, reason, details: ["url": .string(url)]).response.body
        return TrailerRecord(Self.notFoundLine + body)!
    }

    /// The answer in `shape`; `stale` marks the full shape as served past its time-to-live.
    public func response(_ shape: TrailerShape, stale: Bool = false) -> FastCGIResponse {
        guard status == 200 else { return .jsonBytes(status, Array(bytes[4...])) }
        var start = 4
        let lineIndex = switch shape {
        case .full: 0
        case .firstTrailerURL: 1
        case .trailerURLs: 2
        }
        for _ in 0..<lineIndex {
            start = (bytes[start...].firstIndex(of: Self.newline) ?? bytes.endIndex - 1) + 1
        }
        let end = bytes[start...].firstIndex(of: Self.newline) ?? bytes.endIndex
        guard shape == .full, stale else { return .jsonBytes(200, Array(bytes[start..<end])) }
        return .jsonBytes(200, Array(bytes[start..<(end - Self.freshTail.count)]) + Self.staleTail)
    }

    /// The film URL the record was stored for, for the refresher and operators.
    public var url: String? {
        let body = bytes[4..<(bytes[4...].firstIndex(of: Self.newline) ?? bytes.endIndex)]
        guard case .object(let object)? = try? JSONReader.parse(Array(body)) else { return nil }
        guard case .string(let url)? = status == 200 ? object["url"] : object["error"]?["url"] else { return nil }
        return url
    }

    private static let newline = UInt8(ascii: "\n")
    private static let foundLine = Array("200\n".utf8)
    private static let notFoundLine = Array("404\n".utf8)
    private static let freshTail = Array(#""stale":false}"#.utf8)
    private static let staleTail = Array(#""stale":true}"#.utf8)
}
