import Foundation
import LMDBStore
import Logging
import PostgresClient

/// The lookup chain: Viaplay document → IMDb id → TMDB find → TMDB id → TMDB videos →
/// trailers. Each step's answer is kept in the store with its own time-to-live, so a chain run
/// after the final answer expired calls only the upstreams whose step expired too.
///
/// With a database, each step's answer is also shared cluster-wide (`ClusterFlight`): a step
/// missing from this host's store is looked for in the database, and fetched by one host at a
/// time, before any upstream is called.
///
/// The whole chain shares one deadline, the upstream client's total timeout, and no store
/// transaction is open while an upstream is called.
struct TrailerLookup: Sendable {
    let store: Store
    let upstream: UpstreamClient
    var flight: ClusterFlight?

    struct Outcome {
        var record: TrailerRecord
        /// How long the record may be served: as long as the shortest-lived step it came from.
        var lifetime: Duration
        var tmdbCalls: Int
    }

    /// The final answer for `film`: `resolve`'s, run inside `run` (which may take the caller's
    /// upstream slot). With a database, the answer is also the cluster's: a fresh one another
    /// host stored is used as it is, the chain runs on one host at a time and its answer is
    /// stored for the others, so an onboarded answer outlives the store of the host that made
    /// it. `revalidate` runs the chain even when a fresh answer is stored (the refresher). When
    /// the database cannot be used, the chain runs here.
    func answer(_ film: FilmURL, settings: TrailersSettings, revalidate: Bool = false, logger: Logger,
                run: (() throws -> Outcome) throws -> Outcome = { try $0() }) throws -> Outcome {
        func chain() throws -> Outcome {
            try run { try resolve(film, settings: settings, revalidate: revalidate, logger: logger) }
        }
        guard let flight else { return try chain() }
        var computed: Outcome?
        do {
            let shared = try flight.answer(TrailerKeys.answer(film), wait: upstream.timeouts.total + .seconds(1), refetch: revalidate) {
                let outcome = try chain()
                computed = outcome
                return (outcome.record.bytes, outcome.lifetime)
            }
            if let computed { return computed }
            guard let record = TrailerRecord(shared.value) else { return try chain() }
            return Outcome(record: record, lifetime: max(shared.remaining, .seconds(1)), tmdbCalls: 0)
        } catch is ClusterFlight.Timeout {
            throw UpstreamError.timeout
        } catch is PostgresError {
            return try computed ?? chain()
        }
    }

    /// A step's answer as stored: a value, or why there is none.
    private struct Step<Value: Codable>: Codable {
        var value: Value?
        var notFound: String?
    }

    /// Runs the chain for `film`. `revalidate` asks TMDB for the videos even when the stored
    /// step is fresh (the refresher's re-validation). Throws only for upstream failures; every
    /// kind of "not found" is an answer.
    /// `logger` carries the id of the request the chain runs for, if any.
    func resolve(_ film: FilmURL, settings: TrailersSettings, revalidate: Bool = false, logger: Logger) throws(UpstreamError) -> Outcome {
        let deadline = ContinuousClock.now + upstream.timeouts.total
        let lifetimes = settings.lifetimes
        let tmdb = TMDBAPI(base: settings.tmdbBase, auth: settings.tmdbAuth)
        var tmdbCalls = 0
        var expiresAt = UInt64.max

        func notFound(_ reason: String) -> Outcome {
            let lifetime = min(lifetimes.negative, Self.remaining(until: expiresAt))
            return Outcome(record: .notFound(url: film.normalised, reason: reason), lifetime: lifetime, tmdbCalls: tmdbCalls)
        }

        let content: Step<String> = try step(TrailerKeys.content(film), lifetimes.content, lifetimes.negative, &expiresAt) { () throws(UpstreamError) in
            let answer = try call(film.contentURL(viaplayBase: settings.viaplayBase), upstream: "viaplay", deadline: deadline, logger: logger)
            switch answer.status {
            case 200:
                guard let id = try decoding("viaplay", { () throws(UpstreamError) in try ViaplayContent.imdbId(in: answer.body) }) else { return Step(notFound: "the Viaplay document of this film has no IMDb id") }
                return Step(value: id)
            case 404, 410:
                return Step(notFound: "Viaplay does not know this film")
            default:
                throw .status(answer.status)
            }
        }
        guard let imdbId = content.value else { return notFound(content.notFound ?? "not found") }

        let find: Step<Int> = try step(TrailerKeys.find(imdbId: imdbId), lifetimes.find, lifetimes.negative, &expiresAt) { () throws(UpstreamError) in
            tmdbCalls += 1
            let answer = try call(tmdb.findURL(imdbId: imdbId), upstream: "tmdb", headers: tmdb.headers, deadline: deadline, logger: logger)
            switch answer.status {
            case 200:
                guard let id = try decoding("tmdb", { () throws(UpstreamError) in try TMDBAPI.tmdbId(inFind: answer.body) }) else { return Step(notFound: "TMDB has no film with IMDb id \(imdbId)") }
                return Step(value: id)
            case 404:
                return Step(notFound: "TMDB has no film with IMDb id \(imdbId)")
            default:
                throw .status(answer.status)
            }
        }
        guard let tmdbId = find.value else { return notFound(find.notFound ?? "not found") }

        let videos: Step<[Trailer]> = try step(TrailerKeys.videos(tmdbId: tmdbId), lifetimes.videos, lifetimes.negative, &expiresAt,
                                               revalidate: revalidate) { () throws(UpstreamError) in
            tmdbCalls += 1
            let answer = try call(tmdb.videosURL(tmdbId: tmdbId), upstream: "tmdb", headers: tmdb.headers, deadline: deadline, logger: logger)
            switch answer.status {
            case 200:
                let trailers = try decoding("tmdb", { () throws(UpstreamError) in try TMDBAPI.trailers(inVideos: answer.body) })
                return trailers.isEmpty ? Step(notFound: "TMDB lists no YouTube trailer for this film") : Step(value: trailers)
            case 404:
                return Step(notFound: "TMDB does not know the film with TMDB id \(tmdbId)")
            default:
                throw .status(answer.status)
            }
        }
        guard let trailers = videos.value, !trailers.isEmpty else { return notFound(videos.notFound ?? "not found") }

        let answer = TrailerRecord.Answer(url: film.normalised, imdbId: imdbId, tmdbId: tmdbId, trailers: trailers,
                                          updatedAt: Date().formatted(.iso8601))
        guard let record = try? TrailerRecord.found(answer) else { throw .malformed("the answer could not be encoded") }
        return Outcome(record: record, lifetime: Self.remaining(until: expiresAt), tmdbCalls: tmdbCalls)
    }

    /// `decode`'s value; an answer it cannot use is counted as the upstream's decode error.
    private func decoding<T>(_ name: String, _ decode: () throws(UpstreamError) -> T) throws(UpstreamError) -> T {
        do throws(UpstreamError) {
            return try decode()
        } catch {
            if case .malformed = error { upstream.metrics.undecodable(name) }
            throw error
        }
    }

    /// The step's stored answer when fresh (and not `revalidate`), else `fetch`'s, stored with
    /// `lifetime` (or `negative` for a "not found"). Lowers `expiresAt` to the step's expiry.
    private func step<Value: Codable>(
        _ key: String, _ lifetime: Duration, _ negative: Duration, _ expiresAt: inout UInt64, revalidate: Bool = false,
        fetch: () throws(UpstreamError) -> Step<Value>
    ) throws(UpstreamError) -> Step<Value> {
        if !revalidate, let entry = try? store.entry(key), !entry.isExpired(),
           let stored = try? JSONDecoder().decode(Step<Value>.self, from: Data(entry.value)) {
            expiresAt = min(expiresAt, entry.expiresAt)
            return stored
        }
        if let flight, let answer = try shared(key, flight, lifetime, negative, &expiresAt, revalidate: revalidate, fetch: fetch) {
            return answer
        }
        let fetched = try fetch()
        let ttl = fetched.value == nil ? negative : lifetime
        if let bytes = try? JSONEncoder().encode(fetched) {
            // A store that cannot take the step only costs a repeated call later.
            try? store.put(key, Array(bytes), ttl: ttl, as: .disposable)
        }
        expiresAt = min(expiresAt, StoreClock.nowMillis() + UInt64(ttl.nanoseconds / 1_000_000))
        return fetched
    }

    /// The step's answer through the cluster: another host's, or `fetch`'s, fetched by one host
    /// at a time and kept here too until its expiry. Nil when the database cannot be used and
    /// nothing was fetched yet: the caller then calls the upstream itself.
    private func shared<Value: Codable>(
        _ key: String, _ flight: ClusterFlight, _ lifetime: Duration, _ negative: Duration, _ expiresAt: inout UInt64,
        revalidate: Bool, fetch: () throws(UpstreamError) -> Step<Value>
    ) throws(UpstreamError) -> Step<Value>? {
        var fetchedHere: Step<Value>?
        let answer: ClusterFlight.Answer
        do {
            answer = try flight.answer(key, wait: upstream.timeouts.total + .seconds(1), refetch: revalidate) {
                let fetched = try fetch()
                fetchedHere = fetched
                return (Array(try JSONEncoder().encode(fetched)), fetched.value == nil ? negative : lifetime)
            }
        } catch let error as UpstreamError {
            throw error
        } catch is ClusterFlight.Timeout {
            throw .timeout
        } catch {
            // The database failed: an answer fetched here is still good, else the caller fetches.
            guard let fetchedHere else { return nil }
            let ttl = fetchedHere.value == nil ? negative : lifetime
            if let bytes = try? JSONEncoder().encode(fetchedHere) { try? store.put(key, Array(bytes), ttl: ttl, as: .disposable) }
            expiresAt = min(expiresAt, StoreClock.nowMillis() + ttl.millis)
            return fetchedHere
        }
        guard let stored = try? JSONDecoder().decode(Step<Value>.self, from: Data(answer.value)) else { return fetchedHere }
        if answer.remaining > .zero { try? store.put(key, answer.value, ttl: answer.remaining, as: .disposable) }
        expiresAt = min(expiresAt, StoreClock.nowMillis() + answer.remaining.millis)
        return stored
    }

    private func call(_ url: URL, upstream name: String, headers: [(String, String)] = [],
                      deadline: ContinuousClock.Instant, logger: Logger) throws(UpstreamError) -> UpstreamClient.Response {
        guard ContinuousClock.now < deadline else { throw .timeout }
        return try upstream.get(url, upstream: name, headers: headers, maxBytes: name == "viaplay" ? 4 << 20 : 1 << 20, deadline: deadline,
                                logger: logger)
    }

    private static func remaining(until expiresAt: UInt64) -> Duration {
        let now = StoreClock.nowMillis()
        return .milliseconds(Int64(clamping: expiresAt > now + 1000 ? expiresAt - now : 1000))
    }
}
