import FastCGI
import LMDBStore
import Logging
import NIOConcurrencyHelpers
import PostgresClient
import SharedMetrics

/// The feature's moving parts in one worker.
final class TrailersRuntime: Sendable {
    let services: Services
    let threads: Int
    let metrics: TrailerMetrics
    private let configuration: TrailersConfiguration
    private let cache: TrailerCache
    private let queue: any ContentEventQueue
    private let consumer: ContentEventConsumer
    private let refresher: TrailerRefresher
    private let background = NIOLockedValueBox<[BackgroundThread]>([])

    init(services: Services, settings: TrailersSettings) {
        self.services = services
        self.threads = services.settings.threads
        let configuration = TrailersConfiguration(settings)
        self.configuration = configuration
        let logger: @Sendable () -> Logger = { services.logger }
        let settingsNow: @Sendable () -> TrailersSettings = { configuration.settings }
        let metrics = TrailerMetrics(upstream: services.upstream.metrics)
        self.metrics = metrics
        let database = services.database?.client
        let cache = TrailerCache(store: services.store, upstream: services.upstream, metrics: metrics,
                                 flight: database.map { ClusterFlight(database: $0) }, logger: logger)
        self.cache = cache
        let queue: any ContentEventQueue = database.map { PostgresContentEventQueue(client: $0) } ?? LMDBContentEventQueue(store: services.store)
        self.queue = queue
        consumer = ContentEventConsumer(store: services.store, queue: queue, cache: cache, settings: settingsNow, database: database,
                                        logger: logger)
        refresher = TrailerRefresher(store: services.store, lookup: cache.lookup, settings: settingsNow, database: database, logger: logger)
    }

    func apply(_ settings: TrailersSettings) {
        configuration.apply(settings)
    }

    func trailers(_ request: Request, shape: TrailerShape) throws(HTTPError) -> FastCGIResponse {
        let current = configuration.now
        let query = request.fastCGI.queryString
        let film: FilmURL
        if let known = current.films[query] {
            film = known
        } else {
            do {
                film = try FilmURL.parse(request.query["url"], policy: current.settings.policy)
            } catch {
                metrics.invalidURL()
                throw HTTPError(.invalidURL, error.reason)
            }
            current.films.remember(film, for: query)
        }
        let served = try cache.answer(film, settings: current.settings, bulkhead: current.bulkhead, logger: request.logger(services.logger))
        return served.record.response(shape, stale: served.stale)
    }

    /// 202 once every valid event is durably queued (in PostgreSQL, with a database); 400
    /// `invalid_events` when some were refused, listing them, while the valid ones of the batch
    /// are queued all the same. A database that cannot be reached answers 503 `database_unavailable`.
    func contentEvents(_ request: Request) throws -> FastCGIResponse {
        try AdminAuthorization.require(request, services: services)
        let batch = try ContentEventBatch.parse(try JSONBody.object(request), policy: configuration.settings.policy)
        let admissions: [ContentEvent.Admission]
        do {
            admissions = batch.accepted.isEmpty ? [] : try queue.enqueue(batch.accepted.map(\.film))
        } catch let error as PostgresError {
            throw error
        } catch {
            request.logger(services.logger).error("cannot queue content events", metadata: ["error": "\(error)"])
            throw TrailerCache.storeUnavailable
        }
        let events = zip(batch.accepted, admissions).map { accepted, admission in
            JSONValue.object(["index": .int(accepted.index), "url": .string(accepted.film.normalised), "status": .string(admission.rawValue)])
        }
        guard batch.refused.isEmpty else {
            let total = batch.accepted.count + batch.refused.count
            let message = batch.accepted.isEmpty
                ? "\(batch.refused.count == 1 ? "the event was" : "all \(total) events were") refused; nothing was queued"
                : "\(batch.refused.count) of \(total) events were refused; the \(batch.accepted.count) others are queued"
            throw HTTPError(.invalidEvents, message, details: [
                "accepted": .int(batch.accepted.count), "events": .array(events), "refused": .array(batch.refused.map(\.json)),
            ])
        }
        return .json(202, JSONValue.object(["accepted": .int(batch.accepted.count), "events": .array(events)]))
    }

    func start() {
        let consumer = self.consumer
        let refresher = self.refresher
        background.withLockedValue { threads in
            guard threads.isEmpty else { return }
            threads = [
                BackgroundThread(name: "trailers-events", interval: ContentEventConsumer.interval) { consumer.round() },
                BackgroundThread(name: "trailers-refresher", interval: TrailerRefresher.interval) { refresher.round() },
            ]
        }
    }

    func stop() {
        consumer.stop()
        refresher.stop()
        background.withLockedValue { threads in
            for thread in threads { thread.stop() }
        }
    }

    /// The queue's figures, pool-wide from the store (cluster-wide from the database). Left
    /// out while the queue cannot be read, rather than failing the page.
    func collectMetrics(into page: inout MetricsPage) {
        guard let figures = try? queue.figures() else { return }
        page.gauge("marquee_content_events_pending", [], Double(figures.queued))
        page.gauge("marquee_content_events_parked", [], Double(figures.parked))
        page.counter(MetricNames.contentEventsProcessed, [], Double(figures.processed))
        let age = figures.oldestWaitingAge.map { Double($0.millis) / 1000 } ?? 0
        page.gauge("marquee_queue_oldest_item_age_seconds", [("queue", "content_events")], age)
    }

    func status() -> JSONValue {
        let current = configuration.now
        var events: [String: JSONValue] = [:]
        if let figures = try? queue.figures() {
            events = [
                "queueDepth": .int(figures.queued), "parked": .int(figures.parked), "accepted": .int(figures.accepted),
                "duplicates": .int(figures.duplicates), "processed": .int(figures.processed),
            ]
        }
        if let parked = try? queue.parked(limit: 20) { events["parkedEvents"] = .array(parked.map(\.json)) }
        var upstream: [String: JSONValue] = [:]
        if case .object(let all) = services.upstream.metrics.status {
            upstream = all.filter { $0.key == "viaplay" || $0.key == "tmdb" }
        }
        return .object([
            "cache": metrics.status,
            "bulkhead": current.bulkhead.status,
            "upstream": .object(upstream),
            "events": .object(events),
            "consumer": consumer.status,
            "refresher": refresher.status,
            "tmdbAuth": .string(current.settings.tmdbAuth.kind),
        ])
    }
}
