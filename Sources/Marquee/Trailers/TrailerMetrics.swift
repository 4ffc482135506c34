import CoreMetrics
import LMDBStore
import NIOConcurrencyHelpers
import Synchronization

/// This worker's counts of how trailer requests were answered, for the status page and health,
/// and the same counts for the pool through swift-metrics (cache `trailers`).
final class TrailerMetrics: Sendable {
    /// Fresh answers (found or not found) read from the store.
    private let hits = Atomic<Int>(0)
    /// Answers this worker computed, or waited for another process to compute.
    private let misses = Atomic<Int>(0)
    /// Expired answers served because the upstream failed or another process was computing.
    private let staleServes = Atomic<Int>(0)
    private let invalidURLs = Atomic<Int>(0)
    /// When this worker last served stale, in milliseconds since the epoch; 0 never.
    private let lastStaleAt = Atomic<UInt64>(0)
    private let errors = NIOLockedValueBox<[String: Int]>([:])
    private let upstream: UpstreamMetrics
    private let poolHits = Counter(label: MetricNames.cacheHits, dimensions: TrailerMetrics.cache)
    private let poolNegativeHits = Counter(label: MetricNames.cacheNegativeHits, dimensions: TrailerMetrics.cache)
    private let poolMisses = Counter(label: MetricNames.cacheMisses, dimensions: TrailerMetrics.cache)
    private let poolStaleServes = Counter(label: MetricNames.cacheStaleServes, dimensions: TrailerMetrics.cache)
    private static let cache = [("cache", "trailers")]
    /// A lookup's chain starts at Viaplay: joins and bulkhead refusals of lookups count there.
    private static let lookupUpstream = "viaplay"

    init(upstream: UpstreamMetrics) {
        self.upstream = upstream
    }

    /// `negative`: the fresh answer says the film or its trailers are not found.
    func hit(negative: Bool) {
        hits.add(1, ordering: .relaxed)
        poolHits.increment()
        if negative { poolNegativeHits.increment() }
    }

    /// `joined`: the answer came from a lookup another request or process had in flight.
    func miss(joined: Bool) {
        misses.add(1, ordering: .relaxed)
        poolMisses.increment()
        if joined { upstream.joined(Self.lookupUpstream) }
    }

    func invalidURL() { invalidURLs.add(1, ordering: .relaxed) }

    func servedStale() {
        poolStaleServes.increment()
        staleServes.add(1, ordering: .relaxed)
        lastStaleAt.store(StoreClock.nowMillis(), ordering: .relaxed)
    }

    func failed(_ code: String) {
        if code == "overloaded" { upstream.rejected(Self.lookupUpstream) }
        errors.withLockedValue { $0[code, default: 0] += 1 }
    }

    /// Whether a stale answer went out within `window` milliseconds.
    func servedStale(within window: UInt64) -> Bool {
        let last = lastStaleAt.load(ordering: .relaxed)
        return last != 0 && StoreClock.nowMillis() - last < window
    }

    var status: JSONValue {
        .object([
            "hits": .int(hits.load(ordering: .relaxed)),
            "misses": .int(misses.load(ordering: .relaxed)),
            "staleServes": .int(staleServes.load(ordering: .relaxed)),
            "invalidUrls": .int(invalidURLs.load(ordering: .relaxed)),
            "errors": .object(errors.withLockedValue { $0.mapValues { .int($0) } }),
        ])
    }
}
