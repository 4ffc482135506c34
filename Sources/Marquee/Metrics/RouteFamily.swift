/// The `family` label of the request metrics: a route pattern's feature, so that series stay
/// few whatever the paths clients send.
public enum RouteFamily: Int, CaseIterable, Sendable {
    case trailers, movies, users, videos, health, status, metrics, openapi, legacy, other

    public var label: String {
        switch self {
        case .trailers: "trailers"
        case .movies: "movies"
        case .users: "users"
        case .videos: "videos"
        case .health: "health"
        case .status: "status"
        case .metrics: "metrics"
        case .openapi: "openapi"
        case .legacy: "legacy"
        case .other: "other"
        }
    }

    /// The family of a matched route's pattern (`Request.route`); "" (no route) is `other`.
    /// The earlier services' drop-in routes are `legacy`, whatever feature serves them.
    /// Compared byte by byte: String's own prefix test compares Unicode-aware, which cost
    /// the request path more than the rest of its metrics together.
    public init(route: String) {
        var route = route
        self = route.withUTF8(Self.classify)
    }

    private static func classify(_ bytes: UnsafeBufferPointer<UInt8>) -> RouteFamily {
        func has(_ literal: StaticString, at offset: Int = 0) -> Bool {
            let count = literal.utf8CodeUnitCount
            guard bytes.count >= offset + count else { return false }
            let expected = literal.utf8Start
            for index in 0..<count where bytes[offset + index] != expected[index] { return false }
            return true
        }
        func `is`(_ literal: StaticString) -> Bool { bytes.count == literal.utf8CodeUnitCount && has(literal) }
        if has("/api/v1/") {
            if has("health", at: 8) { return .health }
            if has("status", at: 8) { return .status }
            if has("trailer", at: 8) || has("content-events", at: 8) { return .trailers }
            if has("movies", at: 8) { return .movies }
            if has("users", at: 8) { return .users }
            if has("videos", at: 8) || has("tokens", at: 8) { return .videos }
            if has("openapi", at: 8) { return .openapi }
            return .other
        }
        if has("/movies") { return .movies }
        if `is`("/metrics") { return .metrics }
        if has("/openapi") { return .openapi }
        if has("/api/trailer") || has("/video/") { return .legacy }
        if `is`("/") || `is`("/getuser") || `is`("/createuser") || `is`("/removeuser") || `is`("/getallusers")
            || `is`("/requeststream") {
            return .legacy
        }
        return .other
    }
}
