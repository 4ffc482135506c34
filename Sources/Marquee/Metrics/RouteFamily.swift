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
    public init(route: String) {
        if route.hasPrefix("/api/v1/") {
            let rest = route.utf8.dropFirst(8)
            if rest.starts(with: "health".utf8) { self = .health }
            else if rest.starts(with: "status".utf8) { self = .status }
            else if rest.starts(with: "trailer".utf8) || rest.starts(with: "content-events".utf8) { self = .trailers }
            else if rest.starts(with: "movies".utf8) { self = .movies }
            else if rest.starts(with: "users".utf8) { self = .users }
            else if rest.starts(with: "videos".utf8) || rest.starts(with: "tokens".utf8) { self = .videos }
            else if rest.starts(with: "openapi".utf8) { self = .openapi }
            else { self = .other }
        } else if route.hasPrefix("/movies") {
            self = .movies
        } else if route == "/metrics" {
            self = .metrics
        } else if route.hasPrefix("/openapi") {
            self = .openapi
        } else if route.hasPrefix("/api/trailer") || route.hasPrefix("/video/") || Self.legacyUserRoutes.contains(route) {
            self = .legacy
        } else {
            self = .other
        }
    }

    private static let legacyUserRoutes: Set<String> = ["/", "/getuser", "/createuser", "/removeuser", "/getallusers", "/requeststream"]
}
