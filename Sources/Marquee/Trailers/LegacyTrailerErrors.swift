import FastCGI

/// The refusals of the second earlier trailer service, for `GET /api/v1/trailer/`: its
/// clients compare statuses and texts, so they get its texts instead of this API's JSON
/// errors. A film without trailers keeps the 404 of /api/v1/trailers: its tests never asked.
enum LegacyTrailerErrors {
    static func answer(_ request: Request, _ body: () throws(HTTPError) -> FastCGIResponse) -> FastCGIResponse {
        do {
            return try body()
        } catch {
            switch error.status {
            case 400 where !sentURL(request): return text(400, "Missing 'url' parameter")
            case 400: return text(400, "Invalid 'url' parameter")
            // Upstream failures, timeouts and overload alike: it had one answer for them all.
            case 500...: return text(500, "Internal server error")
            default: return error.response
            }
        }
    }

    /// Whether the query has a non-empty `url`, decodable or not: one that cannot be decoded
    /// was sent all the same, and is invalid rather than missing.
    private static func sentURL(_ request: Request) -> Bool {
        request.fastCGI.queryString.split(separator: "&").contains { $0.hasPrefix("url=") && $0.count > 4 }
    }

    private static func text(_ status: Int, _ message: String) -> FastCGIResponse {
        FastCGIResponse(status: status, headers: [(name: "Content-Type", value: "text/html; charset=utf-8")], body: Array(message.utf8))
    }
}
