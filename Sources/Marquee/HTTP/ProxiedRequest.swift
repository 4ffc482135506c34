/// The HTTP request as nginx names it: its `$request_id` and the time nginx built the FastCGI
/// request (`$msec`). Unlike the worker's own clock and counters, both stay the same when nginx
/// retries the request on a second worker, because nginx sends the params it built once again.
/// A client cannot set either: they are FastCGI params, not headers.
public struct ProxiedRequest: Sendable, Equatable {
    /// 32 lowercase hex digits, as nginx draws them.
    public var id: String
    public var startMillis: UInt64

    static let idParam = "NGINX_REQUEST_ID"
    static let startParam = "NGINX_REQUEST_MSEC"

    /// Nil unless both params are there and well formed (a worker reached without nginx).
    public init?(id: String?, msec: String?) {
        guard let id, id.utf8.count == 32,
              id.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) }),
              let msec, let millis = Self.millis(msec) else { return nil }
        self.id = id
        self.startMillis = millis
    }

    /// `$msec` is seconds with exactly three decimals: "1796625499.824".
    static func millis(_ msec: String) -> UInt64? {
        let parts = msec.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[1].utf8.count == 3, parts[0].utf8.count <= 12,
              let seconds = UInt64(parts[0]), let fraction = UInt64(parts[1]) else { return nil }
        return seconds * 1_000 + fraction
    }
}

extension Request {
    /// Nginx's name for this request, when nginx passed it.
    public var proxied: ProxiedRequest? {
        ProxiedRequest(id: param(ProxiedRequest.idParam), msec: param(ProxiedRequest.startParam))
    }
}
