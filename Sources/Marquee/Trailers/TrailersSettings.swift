import Foundation

/// The trailers feature's MARQUEE_* settings, parsed and checked as a whole. Everything here
/// is applied again on reload.
public struct TrailersSettings: Sendable {
    public enum TMDBAuth: Sendable, Equatable {
        case none
        /// A v3 key, sent as the `api_key` query parameter.
        case apiKey(String)
        /// A v4 read access token, sent as `Authorization: Bearer`.
        case bearer(String)

        /// For the status page: which kind, never the secret.
        public var kind: String {
            switch self {
            case .none: "none"
            case .apiKey: "api_key"
            case .bearer: "bearer"
            }
        }
    }

    /// How long each upstream answer is kept. A final answer lives as long as the shortest-lived
    /// step it was built from.
    public struct Lifetimes: Sendable, Equatable {
        /// Viaplay document → IMDb id.
        public var content: Duration
        /// TMDB find → TMDB id.
        public var find: Duration
        /// TMDB videos → trailers.
        public var videos: Duration
        /// Any "not found" (unknown film, no IMDb id, no TMDB match, no YouTube trailer).
        public var negative: Duration
    }

    public var policy: FilmURLPolicy
    /// The origin (and optional path) that stands in for every allowed host; nil fetches each
    /// host as itself.
    public var viaplayBase: String?
    public var tmdbBase: String
    public var tmdbAuth: TMDBAuth
    public var lifetimes: Lifetimes
    /// Lookups one worker runs against the upstreams at once; a new lookup beyond it answers 503.
    public var maxUpstream: Int
    /// Threads of each worker that never wait on an upstream, neither calling it nor following
    /// a lookup in flight; a request that would take one answers 503 (or stale) instead.
    public var reserveThreads: Int
    /// The threads that may wait on an upstream: all but the reserve.
    public var maxWaiting: Int
    /// Stored answers older than this are looked up again in the background.
    public var refreshAge: Duration
    /// TMDB calls per second the refresher may make, pool-wide; 0 turns it off.
    public var refreshRate: Int
    /// Attempts of one content event before it is parked.
    public var eventAttempts: Int
    /// The wait before the first retry of an event; it doubles with each attempt.
    public var eventBackoff: Duration

    public init(_ reader: SettingsReader, threads: Int) throws(SettingsError) {
        let hosts = try Self.list(reader, "MARQUEE_TRAILERS_HOSTS", default: FilmURLPolicy.defaultHosts) { host in
            host.range(of: #"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$"#, options: .regularExpression) != nil
                && !host.allSatisfy { $0.isNumber || $0 == "." }
        }
        let prefixes = try Self.list(reader, "MARQUEE_TRAILERS_PATH_PREFIXES", default: FilmURLPolicy.defaultPathPrefixes) { prefix in
            prefix.range(of: #"^/([a-z0-9-]+/)+$"#, options: .regularExpression) != nil
        }
        let maxSlug = try reader.int("MARQUEE_TRAILERS_MAX_SLUG_LENGTH", default: 100, range: 1...200)
        policy = FilmURLPolicy(hosts: hosts, pathPrefixes: prefixes, maxSlugLength: maxSlug)

        if reader.string("MARQUEE_VIAPLAY_BASE_URL") != nil {
            viaplayBase = Self.base(try reader.url("MARQUEE_VIAPLAY_BASE_URL", default: ""))
        } else {
            viaplayBase = nil
        }
        tmdbBase = Self.base(try reader.url("MARQUEE_TMDB_BASE_URL", default: "https://api.themoviedb.org"))
        switch (reader.string("MARQUEE_TMDB_API_KEY"), reader.string("MARQUEE_TMDB_TOKEN")) {
        case (nil, nil): tmdbAuth = .none
        case (let key?, nil): tmdbAuth = .apiKey(key)
        case (nil, let token?): tmdbAuth = .bearer(token)
        case (.some, .some):
            throw SettingsError(variable: "MARQUEE_TMDB_TOKEN", problem: "set MARQUEE_TMDB_API_KEY or MARQUEE_TMDB_TOKEN, not both")
        }
        if case .apiKey(let key) = tmdbAuth, !key.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) {
            throw SettingsError(variable: "MARQUEE_TMDB_API_KEY", problem: "expected letters and digits only")
        }
        if case .bearer(let token) = tmdbAuth, !token.allSatisfy({ $0.isASCII && !$0.isWhitespace && !$0.isNewline }) {
            throw SettingsError(variable: "MARQUEE_TMDB_TOKEN", problem: "must not contain spaces or control characters")
        }

        let day = 86_400.0
        lifetimes = Lifetimes(
            content: try reader.seconds("MARQUEE_TRAILERS_CONTENT_TTL", default: .seconds(7 * 86_400), range: 1...(365 * day)),
            find: try reader.seconds("MARQUEE_TRAILERS_FIND_TTL", default: .seconds(7 * 86_400), range: 1...(365 * day)),
            videos: try reader.seconds("MARQUEE_TRAILERS_VIDEOS_TTL", default: .seconds(86_400), range: 1...(365 * day)),
            negative: try reader.seconds("MARQUEE_TRAILERS_NEGATIVE_TTL", default: .seconds(600), range: 1...(30 * day))
        )

        // At least one thread of each worker must stay free of upstream waits, unless there is only one.
        let maxReserve = max(0, threads - 1)
        reserveThreads = try reader.int("MARQUEE_TRAILERS_RESERVE_THREADS", default: min(max(1, threads / 4), maxReserve), range: 0...256)
        guard reserveThreads <= maxReserve, threads == 1 || reserveThreads >= 1 else {
            throw SettingsError(variable: "MARQUEE_TRAILERS_RESERVE_THREADS",
                                problem: threads == 1 ? "must be 0 with a single thread (MARQUEE_THREADS)"
                                    : "must be from 1 to \(maxReserve), so that lookups and cached routes both keep threads of the \(threads) (MARQUEE_THREADS)")
        }
        maxWaiting = threads - reserveThreads
        maxUpstream = try reader.int("MARQUEE_TRAILERS_MAX_UPSTREAM", default: max(1, min(threads / 2, maxWaiting)), range: 1...256)
        guard maxUpstream <= maxWaiting else {
            throw SettingsError(variable: "MARQUEE_TRAILERS_MAX_UPSTREAM",
                                problem: "must be at most \(maxWaiting): the \(threads) threads (MARQUEE_THREADS) less the reserve (MARQUEE_TRAILERS_RESERVE_THREADS)")
        }
        refreshAge = try reader.seconds("MARQUEE_TRAILERS_REFRESH_AGE", default: .seconds(86_400), range: 1...(365 * day))
        refreshRate = try reader.int("MARQUEE_TRAILERS_REFRESH_RATE", default: 5, range: 0...1000)
        eventAttempts = try reader.int("MARQUEE_TRAILERS_EVENT_ATTEMPTS", default: 8, range: 1...100)
        eventBackoff = try reader.seconds("MARQUEE_TRAILERS_EVENT_BACKOFF", default: .seconds(2), range: 0.05...3600)
    }

    /// How long a final answer built from steps of these lifetimes may be served.
    var answerLifetime: Duration { min(lifetimes.content, lifetimes.find, lifetimes.videos) }

    /// A comma-separated list whose every item passes `valid`.
    private static func list(_ reader: SettingsReader, _ variable: String, default fallback: [String],
                             valid: (String) -> Bool) throws(SettingsError) -> [String] {
        guard let text = reader.string(variable) else { return fallback }
        let items = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty }
        guard !items.isEmpty else { throw SettingsError(variable: variable, problem: "expected a comma-separated list, got '\(text)'") }
        if let bad = items.first(where: { !valid($0) }) {
            throw SettingsError(variable: variable, problem: "'\(bad)' is not valid here")
        }
        return items
    }

    /// The URL without a trailing slash, so that paths starting with one can be appended.
    private static func base(_ url: URL) -> String {
        var text = url.absoluteString
        while text.hasSuffix("/") { text.removeLast() }
        return text
    }
}
