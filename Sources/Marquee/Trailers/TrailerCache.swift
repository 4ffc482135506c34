import LMDBStore
import Logging

/// Final answers, shared by the whole pool through the store (and by the cluster through the
/// database, when there is one: see `TrailerLookup.answer`).
///
/// A hit is one read transaction and the stored bytes served as they are. A miss runs the
/// lookup chain under the store's pool-wide single flight: whatever the number of requests,
/// workers and the event consumer asking at once, one of them calls the upstreams and the
/// others wait for its answer or, when it fails, for its error. When the chain fails and an
/// expired answer is stored, that answer is served marked stale instead of the error.
final class TrailerCache: Sendable {
    private let store: Store
    let lookup: TrailerLookup
    let metrics: TrailerMetrics
    private let logger: @Sendable () -> Logger

    /// `flight`: with a database, the lookup steps are shared with the other hosts.
    init(store: Store, upstream: UpstreamClient, metrics: TrailerMetrics, flight: ClusterFlight? = nil,
         logger: @escaping @Sendable () -> Logger) {
        self.store = store
        self.lookup = TrailerLookup(store: store, upstream: upstream, flight: flight)
        self.metrics = metrics
        self.logger = logger
    }

    struct Served {
        var record: TrailerRecord
        var stale: Bool
    }

    /// The answer for a client request. A request that starts a lookup takes one of the
    /// bulkhead's upstream slots; one that follows a lookup already in flight, in any worker,
    /// only waits for its answer, up to the upstream deadline. Either way it waits outside the
    /// bulkhead's reserve of threads. When no slot or no thread outside the reserve is free,
    /// the answer is 503, or the stale answer when there is one. `logger` carries the request's id
    /// onto the lines about the lookup it leads.
    func answer(_ film: FilmURL, settings: TrailersSettings, bulkhead: Bulkhead, logger: Logger) throws(HTTPError) -> Served {
        let key = TrailerKeys.answer(film)
        let stored: StoreEntry?
        do {
            stored = try store.entry(key)
        } catch {
            throw Self.storeUnavailable
        }
        if let stored, !stored.isExpired(), let record = TrailerRecord(stored.value) {
            metrics.hit(negative: record.status != 200)
            return Served(record: record, stale: false)
        }
        let outcome: Result<Served, HTTPError>
        do {
            outcome = try bulkhead.wait {
                // Only the request that wins the fill claim takes a slot, inside the fill: requests
                // arriving together all find no fill yet, and holding a slot each while they follow
                // the winner shed the burst's tail. The early check refuses before the claim's
                // write when every slot is taken by other films' lookups.
                if (try? store.isFilling(key)) != true { try bulkhead.checkRoom() }
                return shared(film, key: key, settings: settings, leading: bulkhead, logger: logger)
            }
        } catch {
            if let stale = staleAnswer(stored) { return stale }
            metrics.failed("overloaded")
            throw UpstreamError.overloaded.httpError
        }
        return try outcome.get()
    }

    /// `leading`: the bulkhead whose upstream slot a lookup this call computes must take.
    private func shared(_ film: FilmURL, key: String, settings: TrailersSettings, leading: Bulkhead,
                        logger: Logger) -> Result<Served, HTTPError> {
        let failure: HTTPError
        do {
            let fetched = try fetch(film, key: key, settings: settings, leading: leading, logger: logger)
            guard let record = TrailerRecord(fetched.entry.value) else {
                throw HTTPError(.internalError, "the stored answer is unreadable; it is replaced at its expiry")
            }
            switch fetched.source {
            case .hit:
                metrics.hit(negative: record.status != 200)
            case .computed:
                metrics.miss(joined: false)
            case .waited:
                metrics.miss(joined: true)
            case .stale:
                // Another process is computing the answer right now: the expired one serves meanwhile.
                metrics.servedStale()
                return .success(Served(record: record, stale: true))
            }
            return .success(Served(record: record, stale: false))
        } catch {
            failure = Self.httpError(for: error)
        }
        if let stale = staleAnswer(try? store.entry(key)) { return .success(stale) }
        metrics.failed(failure.code)
        return .failure(failure)
    }

    /// What the event consumer's prefetch came to.
    enum Prefetch: Equatable {
        /// A fresh answer (found or not found) is stored.
        case stored
        /// Another process is computing it now; try again shortly.
        case busy
        case failed(String)
    }

    /// Makes sure a fresh answer for `film` is stored, through the same single flight as requests.
    func prefetch(_ film: FilmURL, settings: TrailersSettings) -> Prefetch {
        do {
            let fetched = try fetch(film, key: TrailerKeys.answer(film), settings: settings, logger: logger())
            return fetched.source == .stale ? .busy : .stored
        } catch {
            // For the queue's status (loopback only), not for clients: the upstream's own detail.
            return .failed((error as? UpstreamError)?.description ?? Self.httpError(for: error).message)
        }
    }

    private func fetch(_ film: FilmURL, key: String, settings: TrailersSettings, leading: Bulkhead? = nil, logger: Logger) throws -> Fetched {
        let lookup = self.lookup
        return try store.fetch(key, wait: lookup.upstream.timeouts.total + .seconds(1), failurePayload: Self.payload) {
            do {
                let outcome = try lookup.answer(film, settings: settings, logger: logger) { chain in
                    guard let leading else { return try chain() }
                    return try leading.lead(chain)
                }
                return (outcome.record.bytes, outcome.lifetime)
            } catch {
                logger.warning("trailer lookup failed", metadata: ["url": "\(film.normalised)", "error": "\(error)"])
                throw error
            }
        }
    }

    private func staleAnswer(_ entry: StoreEntry?) -> Served? {
        guard let entry, let record = TrailerRecord(entry.value), record.status == 200 else { return nil }
        metrics.servedStale()
        return Served(record: record, stale: true)
    }

    static let storeUnavailable = HTTPError(.storeUnavailable, "the shared store cannot be used; retry shortly",
                                            headers: [(name: "Retry-After", value: "1")])

    /// The leader's error as its waiters receive it: `status code message`.
    private static func payload(_ error: any Error) -> [UInt8] {
        let failure = httpError(for: error)
        return Array("\(failure.status) \(failure.code) \(failure.message)".utf8)
    }

    static func httpError(for error: any Error) -> HTTPError {
        switch error {
        case let failure as HTTPError:
            return failure
        case let upstream as UpstreamError:
            return upstream.httpError
        case let failure as SingleFlightFailure:
            let parts = String(decoding: failure.payload, as: UTF8.self).split(separator: " ", maxSplits: 2).map(String.init)
            guard parts.count == 3, let code = ErrorCode.named(parts[1]) else { return HTTPError(.upstreamError, "the upstream lookup failed") }
            // The payload carries no headers; a shed lookup's followers get its Retry-After too.
            if code == .overloaded { return UpstreamError.overloaded.httpError }
            return HTTPError(code, parts[2])
        case is SingleFlightTimeout:
            return UpstreamError.timeout.httpError
        default:
            return storeUnavailable
        }
    }
}
