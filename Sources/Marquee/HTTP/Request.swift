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
        guard let id = header("X-Request-Id"), (1...64).contains(id.utf8.count),
              id.utf8.allSatisfy({ Self.requestIdBytes.contains($0) }) else { return nil }
        return id
    }

    private static let requestIdBytes = Set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_.".utf8)

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
