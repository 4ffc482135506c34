import Foundation

/// The movies feature's own variables; a reload replaces them as a whole.
struct MoviesSettings: Sendable {
    /// MARQUEE_GHIBLI_BASE_URL: where `/films` and `/people` are asked.
    var ghibliBaseURL: URL
    /// MARQUEE_MOVIES_REFRESH_SECONDS: the pool asks the upstream at most once per interval.
    var refreshInterval: Duration

    static let defaultBaseURL = "https://ghibliapi.vercel.app"
    static let defaultRefreshInterval = Duration.seconds(50)
    /// Above this the freshness bound could not hold: the data would be refreshed, at the
    /// latest, one interval plus one loop round plus the two upstream calls after the last time.
    static let maxRefreshSeconds = 55.0

    init(_ reader: SettingsReader) throws(SettingsError) {
        ghibliBaseURL = try reader.url("MARQUEE_GHIBLI_BASE_URL", default: Self.defaultBaseURL)
        refreshInterval = try reader.seconds("MARQUEE_MOVIES_REFRESH_SECONDS", default: Self.defaultRefreshInterval,
                                             range: 1...Self.maxRefreshSeconds)
    }

    /// While nothing was ever loaded a failed load is tried again sooner than a refresh, since
    /// the pages answer 503 until one succeeds.
    var emptyStoreRetry: Duration { min(refreshInterval, .seconds(5)) }

    /// How often each worker's loop looks at the lease and the clock.
    var loopInterval: Duration { min(refreshInterval / 4, .seconds(1)) }
}
