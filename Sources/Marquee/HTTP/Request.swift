import FastCGI
import Foundation

/// A request as a handler sees it: the FastCGI params, the matched route, its path
/// parameters and the decoded query.
public struct Request {
    public let fastCGI: FastCGIRequest
    public let method: String
    public let path: String
    public internal(set) var route: String
    public internal(set) var parameters: [String: String]
    let maxBodyBytes: Int

    init(_ fastCGI: FastCGIRequest, maxBodyBytes: Int) {
        self.fastCGI = fastCGI
        self.method = fastCGI.method
        self.path = fastCGI.path
        self.route = "unmatched"
        self.parameters = [:]
        self.maxBodyBytes = maxBodyBytes
    }

    public func param(_ name: String) -> String? { fastCGI.param(name) }
    public func header(_ name: String) -> String? { fastCGI.header(name) }

    /// nginx's `$request_id`, which its config passes as X-Request-Id in place of any client's.
    /// It goes back out in a header and into the log, so anything but a short token is dropped.
    public var requestId: String? {
        // The param by its FastCGI name: `header` would build the name anew on every request.
        guard let id = fastCGI.param("HTTP_X_REQUEST_ID"), Self.isRequestId(id) else { return nil }
        return id
    }

    /// 1 to 64 of [0-9A-Za-z._-]. Byte ranges, not a Set: hashing each byte cost a request
    /// a tenth of its instructions.
    static func isRequestId(_ id: String) -> Bool {
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

    /// The query string decoded; the first of repeated names wins.
    public var query: [String: String] { QueryString.decode(fastCGI.queryString) }

    /// The body, refused with 413 above the configured limit.
    public func body() throws(HTTPError) -> [UInt8] {
        do {
            return try fastCGI.readBody(limit: maxBodyBytes)
        } catch .tooLarge(let limit) {
            throw HTTPError(413, "payload_too_large", "the body is over the limit of \(limit) bytes")
        } catch {
            throw HTTPError(400, "unreadable_body", "the body could not be read")
        }
    }
}
