import FastCGI
import Foundation
import Logging

/// A request as a handler sees it: the FastCGI params, the matched route, its path
/// parameters and the decoded query.
public struct Request {
    public let fastCGI: FastCGIRequest
    public let method: String
    public let path: String
    public internal(set) var route: String
    public internal(set) var parameters: [String: String]
    /// The id nginx passes as X-Request-Id: a client's own when it is a safe token, else
    /// nginx's `$request_id`. It goes back out in a header and into every log line about the
    /// request, so it is checked again here: anything but a safe token is dropped.
    public let requestId: String?
    let maxBodyBytes: Int

    init(_ fastCGI: FastCGIRequest, maxBodyBytes: Int) {
        self.fastCGI = fastCGI
        self.method = fastCGI.method
        self.path = fastCGI.path
        self.route = "unmatched"
        self.parameters = [:]
        // The param by its FastCGI name: `header` would build the name anew on every request.
        self.requestId = fastCGI.param("HTTP_X_REQUEST_ID").flatMap { Self.isSafeRequestId($0) ? $0 : nil }
        self.maxBodyBytes = maxBodyBytes
    }

    public func param(_ name: String) -> String? { fastCGI.param(name) }
    public func header(_ name: String) -> String? { fastCGI.header(name) }

    /// `^[A-Za-z0-9._-]{1,64}$`, the pattern of nginx's map `$marquee_request_id_in`. Byte
    /// ranges, not a Set: hashing each byte cost a request a tenth of its instructions.
    static func isSafeRequestId(_ id: String) -> Bool {
        let bytes = id.utf8
        guard (1...64).contains(bytes.count) else { return false }
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."):
                continue
            default:
                return false
            }
        }
        return true
    }

    /// `base` with the request's id as `request_id`, for every line logged about this request
    /// (its upstream calls included).
    public func logger(_ base: Logger) -> Logger {
        guard let requestId else { return base }
        var logger = base
        logger[metadataKey: Self.requestIdKey] = .string(requestId)
        return logger
    }

    /// The one log key of a request's id, on every line that carries one.
    public static let requestIdKey = "request_id"

    /// The query string decoded; the first of repeated names wins.
    public var query: [String: String] { QueryString.decode(fastCGI.queryString) }

    /// The body, refused with 413 above the configured limit.
    public func body() throws(HTTPError) -> [UInt8] {
        do {
            return try fastCGI.readBody(limit: maxBodyBytes)
        } catch .tooLarge(let limit) {
            throw HTTPError(.payloadTooLarge, "the body is over the limit of \(limit) bytes")
        } catch {
            throw HTTPError(.unreadableBody, "the body could not be read")
        }
    }
}
