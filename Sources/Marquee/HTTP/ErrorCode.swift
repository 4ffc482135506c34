/// Every error code a worker answers, with its status: the one place the code takes them
/// from. The OpenAPI description (`ErrorCode`) lists them, with nginx's own, and their meaning;
/// `OpenAPIDescriptionTests` holds the two lists equal.
public struct ErrorCode: Sendable, Hashable, CustomStringConvertible {
    public let code: String
    public let status: Int

    private init(_ code: String, _ status: Int) {
        self.code = code
        self.status = status
    }

    public var description: String { code }

    public static let invalidBody = ErrorCode("invalid_body", 400)
    public static let invalidQuery = ErrorCode("invalid_query", 400)
    public static let invalidId = ErrorCode("invalid_id", 400)
    public static let invalidVideoId = ErrorCode("invalid_video_id", 400)
    public static let invalidURL = ErrorCode("invalid_url", 400)
    public static let invalidEvents = ErrorCode("invalid_events", 400)
    public static let invalidEvent = ErrorCode("invalid_event", 400)
    public static let unsupportedType = ErrorCode("unsupported_type", 400)
    public static let unreadableBody = ErrorCode("unreadable_body", 400)
    public static let unauthorized = ErrorCode("unauthorized", 401)
    public static let forbidden = ErrorCode("forbidden", 403)
    public static let sourceNotCatalogued = ErrorCode("source_not_catalogued", 403)
    public static let tokenMissing = ErrorCode("token_missing", 403)
    public static let tokenInvalid = ErrorCode("token_invalid", 403)
    public static let tokenKeyRetired = ErrorCode("token_key_retired", 403)
    public static let tokenExpired = ErrorCode("token_expired", 403)
    public static let notFound = ErrorCode("not_found", 404)
    public static let userNotFound = ErrorCode("user_not_found", 404)
    public static let streamNotActive = ErrorCode("stream_not_active", 404)
    public static let methodNotAllowed = ErrorCode("method_not_allowed", 405)
    public static let userExists = ErrorCode("user_exists", 409)
    public static let streamLimitReached = ErrorCode("stream_limit_reached", 409)
    public static let payloadTooLarge = ErrorCode("payload_too_large", 413)
    public static let bodyTooLarge = ErrorCode("body_too_large", 413)
    public static let internalError = ErrorCode("internal", 500)
    public static let upstreamError = ErrorCode("upstream_error", 502)
    public static let adminDisabled = ErrorCode("admin_disabled", 503)
    public static let overloaded = ErrorCode("overloaded", 503)
    public static let storeUnavailable = ErrorCode("store_unavailable", 503)
    public static let moviesUnavailable = ErrorCode("movies_unavailable", 503)
    public static let visitNotRecorded = ErrorCode("visit_not_recorded", 503)
    public static let noCDNConfigured = ErrorCode("no_cdn_configured", 503)
    public static let databaseUnavailable = ErrorCode("database_unavailable", 503)
    public static let requestTimeout = ErrorCode("request_timeout", 504)
    public static let upstreamTimeout = ErrorCode("upstream_timeout", 504)
    public static let storeFull = ErrorCode("store_full", 507)

    public static let all: [ErrorCode] = [
        invalidBody, invalidQuery, invalidId, invalidVideoId, invalidURL, invalidEvents, invalidEvent, unsupportedType, unreadableBody,
        unauthorized, forbidden, sourceNotCatalogued, tokenMissing, tokenInvalid, tokenKeyRetired, tokenExpired,
        notFound, userNotFound, streamNotActive, methodNotAllowed, userExists, streamLimitReached, payloadTooLarge, bodyTooLarge,
        internalError, upstreamError, adminDisabled, overloaded, storeUnavailable, moviesUnavailable, visitNotRecorded,
        noCDNConfigured, databaseUnavailable, requestTimeout, upstreamTimeout, storeFull,
    ]

    /// The catalogue's entry for `code`, for an error read back from the store.
    public static func named(_ code: String) -> ErrorCode? {
        all.first { $0.code == code }
    }
}
