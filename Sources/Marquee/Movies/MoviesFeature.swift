import FastCGI
import Foundation
import LMDBStore
import NIOConcurrencyHelpers
import SharedMetrics
import Synchronization

/// The Studio Ghibli catalogue, never older than a minute and never fetched on a page load:
/// - `GET /movies/` answers the HTML page, `GET /api/v1/movies` the same data as JSON;
/// - both are rendered once per refresh and stored; a page load serves the stored bytes
///   (through `RepresentationCache`), with ETag, Last-Modified and a max-age that never
///   outlasts the data's freshness;
/// - `MoviesRefresher` keeps them fresh from one leader worker at a time.
public struct MoviesFeature: Feature {
    public let name = "movies"
    /// No answer is based on data older than this while the upstream is healthy.
    static let freshness = Duration.seconds(60)

    static let htmlContentType = "text/html; charset=utf-8"
    static let jsonContentType = "application/json"

    private let runtime: Runtime

    final class Runtime: Sendable {
        let refresher: MoviesRefresher
        let page: MoviesPage
        let representations: RepresentationCache
        let loop = NIOLockedValueBox<BackgroundThread?>(nil)
        let pageHits = Atomic<Int>(0)
        let apiHits = Atomic<Int>(0)
        let notModified = Atomic<Int>(0)
        let unavailable = Atomic<Int>(0)
        private let recentState = NIOLockedValueBox<(readAt: UInt64, state: RefreshState?)>((0, nil))

        init(settings: MoviesSettings, services: Services) {
            let page = MoviesPage()
            let representations = RepresentationCache(store: services.store)
            self.page = page
            self.representations = representations
            self.refresher = MoviesRefresher(store: services.store, upstream: services.upstream, page: page,
                                             representations: representations, settings: settings,
                                             flight: services.database.map { ClusterFlight(database: $0.client) },
                                             logger: { services.logger })
        }

        var current: MoviesSettings { refresher.settings }

        /// The pool's refresh record, read from the store at most twice a second: health asks
        /// for it on every probe.
        func refreshState() -> RefreshState? {
            let now = StoreClock.nowMillis()
            if let cached = recentState.withLockedValue({ now < $0.readAt + 500 ? $0.state : nil }) { return cached }
            let state = refresher.state()
            recentState.withLockedValue { $0 = (now, state) }
            return state
        }
    }

    private let store: Store

    public init(services: Services) throws(SettingsError) {
        store = services.store
        runtime = Runtime(settings: try MoviesSettings(services.settings.reader), services: services)
    }

    public static func validate(_ reader: SettingsReader) throws(SettingsError) {
        _ = try MoviesSettings(reader)
    }

    public func register(in router: inout Router) {
        let store = self.store
        let runtime = self.runtime
        router.get("/movies/") { request in
            runtime.pageHits.add(1, ordering: .relaxed)
            var response = try Self.answer(request, key: MoviesRefresher.Keys.page, contentType: Self.htmlContentType, store: store,
                                           runtime: runtime) { retryAfter in
                .html(503, runtime.page.renderUnavailable(retryAfterSeconds: retryAfter), headers: Self.unavailableHeaders(retryAfter))
            }
            response.headers.append((name: "Content-Security-Policy", value: runtime.page.contentSecurityPolicy))
            return response
        }
        router.get("/movies") { _ in
            FastCGIResponse(status: 301, headers: [(name: "Location", value: "/movies/")])
        }
        router.get("/api/v1/movies") { request in
            runtime.apiHits.add(1, ordering: .relaxed)
            return try Self.answer(request, key: MoviesRefresher.Keys.json, contentType: Self.jsonContentType, store: store, runtime: runtime) { retryAfter in
                HTTPError(.moviesUnavailable, "the film list has not been loaded yet; retry in \(retryAfter) s",
                          headers: Self.unavailableHeaders(retryAfter)).response
            }
        }
    }

    private static func unavailableHeaders(_ retryAfter: Int) -> [(name: String, value: String)] {
        [(name: "Retry-After", value: String(retryAfter)), (name: "Cache-Control", value: "no-store")]
    }

    /// The stored bytes on the hot path; only an empty store waits for the first load.
    private static func answer(_ request: Request, key: String, contentType: String, store: Store, runtime: Runtime,
                               orUnavailable unavailableAnswer: (Int) -> FastCGIResponse) throws -> FastCGIResponse {
        if let stored = try runtime.representations.representation(key) {
            return respond(stored, to: request, contentType: contentType, runtime: runtime)
        }
        let retryAfter: Int
        switch runtime.refresher.awaitFirstLoad() {
        case .loaded:
            if let stored = try runtime.representations.representation(key) {
                return respond(stored, to: request, contentType: contentType, runtime: runtime)
            }
            retryAfter = max(1, Int(runtime.current.emptyStoreRetry.components.seconds))
        case .unavailable(let seconds):
            retryAfter = seconds
        }
        runtime.unavailable.add(1, ordering: .relaxed)
        return unavailableAnswer(retryAfter)
    }

    private static func respond(_ stored: Representation, to request: Request, contentType: String, runtime: Runtime) -> FastCGIResponse {
        let response = stored.response(to: request, contentType: contentType, now: StoreClock.nowMillis(), freshness: freshness)
        if response.status == 304 { runtime.notModified.add(1, ordering: .relaxed) }
        return response
    }

    public func start() {
        let refresher = runtime.refresher
        let interval = runtime.current.loopInterval
        runtime.loop.withLockedValue { $0 = BackgroundThread(name: "movies-refresh", interval: interval) { refresher.round() } }
    }

    public func stop() {
        runtime.loop.withLockedValue { $0?.stop() }
        runtime.refresher.resign()
    }

    public func prepareReload(_ reader: SettingsReader) throws(SettingsError) -> @Sendable () -> Void {
        let settings = try MoviesSettings(reader)
        let runtime = self.runtime
        return {
            let previous = runtime.current
            runtime.refresher.apply(settings)
            guard previous.loopInterval != settings.loopInterval else { return }
            let refresher = runtime.refresher
            runtime.loop.withLockedValue { loop in
                guard let running = loop else { return }
                running.stop()
                loop = BackgroundThread(name: "movies-refresh", interval: settings.loopInterval) { refresher.round() }
            }
        }
    }

    /// Staleness is the age of the data served: since the last successful refresh.
    public func collectMetrics(into page: inout MetricsPage) {
        guard let refreshedAt = MoviesRefresher.state(in: store)?.refreshedAt else { return }
        page.gauge("marquee_movies_last_refresh_timestamp_seconds", [], Double(refreshedAt) / 1000)
        page.gauge("marquee_movies_staleness_seconds", [], Double(StoreClock.nowMillis().saturatingSubtract(refreshedAt)) / 1000)
    }

    public func status() -> JSONValue {
        guard case .object(var document) = Self.poolStatus(store: store),
              case .object(var refresh) = document["refresh"] else { return .null }
        refresh["intervalSeconds"] = .double(Double(runtime.current.refreshInterval.millis) / 1000)
        document["refresh"] = .object(refresh)
        document["requests"] = .object([
            "page": .int(runtime.pageHits.load(ordering: .relaxed)),
            "api": .int(runtime.apiHits.load(ordering: .relaxed)),
            "notModified": .int(runtime.notModified.load(ordering: .relaxed)),
            "unavailable": .int(runtime.unavailable.load(ordering: .relaxed)),
        ])
        return .object(document)
    }

    /// The pool's refresh record and the leader, as the store holds them; for the status page
    /// and `marquee movies status`.
    public static func poolStatus(store: Store) -> JSONValue {
        var refresh: [String: JSONValue] = ["leaderPid": MoviesRefresher.leaderPid(in: store).map { .int($0) } ?? .null]
        var catalogue: [String: JSONValue] = [:]
        if let state = MoviesRefresher.state(in: store) {
            refresh["succeeded"] = .int(state.succeeded)
            refresh["failed"] = .int(state.failed)
            refresh["lastAttemptAt"] = time(state.lastAttemptAt)
            refresh["lastAttemptPid"] = state.lastAttemptPid.map { .int($0) } ?? .null
            refresh["refreshedAt"] = time(state.refreshedAt)
            refresh["lastFailureAt"] = time(state.lastFailureAt)
            refresh["lastError"] = state.lastError.map { .string($0) } ?? .null
            refresh["staleSince"] = time(state.staleSince)
            catalogue = ["films": .int(state.films), "people": .int(state.people), "untitledFilms": .int(state.untitledFilms)]
        }
        return .object(["refresh": .object(refresh), "catalogue": .object(catalogue)])
    }

    public func degradation() -> String? {
        guard let state = runtime.refreshState() else { return nil }
        let now = StoreClock.nowMillis()
        // Before the first load the routes answer 503 and the status page has the error; health
        // speaks of degraded data, and there is none yet.
        guard let refreshedAt = state.refreshedAt else { return nil }
        if let staleSince = state.staleSince {
            // Health is public: the reason (hosts, NIO errors) is in the log and on the loopback-only status page.
            return "serving stale movies since \(Self.isoTime(staleSince)): the refresh from the upstream fails"
        }
        let age = now.saturatingSubtract(refreshedAt)
        if age > Self.freshness.millis {
            return "the movies data is \(age / 1000) s old: no worker has refreshed it"
        }
        return nil
    }

    private static func time(_ millis: UInt64?) -> JSONValue {
        millis.map { .string(isoTime($0)) } ?? .null
    }

    private static func isoTime(_ millis: UInt64) -> String {
        ISO8601DateFormatter().string(from: Date(millis: millis))
    }
}
