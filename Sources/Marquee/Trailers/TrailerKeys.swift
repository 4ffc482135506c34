/// Where the trailers feature keeps things in the shared store. Cache entries (answers and
/// upstream steps) have a time-to-live and may be evicted; the event queue, the parked events
/// and the counters have none and are state (without a database: with one, the queue is in
/// PostgreSQL, see `PostgresContentEventQueue`).
enum TrailerKeys {
    static let answerPrefix = "trailers/answer/"
    /// The final answer for one normalised film URL (see `TrailerRecord`).
    static func answer(_ film: FilmURL) -> String { answerPrefix + film.digest }

    /// Viaplay document → IMDb id, per film URL.
    static func content(_ film: FilmURL) -> String { "trailers/content/" + film.digest }
    /// TMDB find → TMDB id, per IMDb id.
    static func find(imdbId: String) -> String { "trailers/find/" + imdbId }
    /// TMDB videos → trailers, per TMDB id.
    static func videos(tmdbId: Int) -> String { "trailers/videos/\(tmdbId)" }

    static let queuePrefix = "trailers/queue/"
    static let parkedPrefix = "trailers/parked/"
    /// One entry per film URL, which is what deduplicates events.
    static func queued(digest: String) -> String { queuePrefix + digest }
    static func parked(digest: String) -> String { parkedPrefix + digest }

    static let queuedCount = "trailers/count/queued"
    static let parkedCount = "trailers/count/parked"
    static let acceptedCount = "trailers/count/accepted"
    static let duplicateCount = "trailers/count/duplicates"
    static let processedCount = "trailers/count/processed"

    static let consumerLease = "trailers/consumer"
    static let refresherLease = "trailers/refresher"
}
