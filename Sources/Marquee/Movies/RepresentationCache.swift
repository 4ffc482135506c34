import CoreMetrics
import LMDBStore
import NIOConcurrencyHelpers

/// This worker's copies of the stored page and JSON, checked on every load against the
/// pool-wide generation that the refresher bumps after each commit replacing them: a load is
/// one atomic read of a shared page instead of a store transaction and a copy of the body.
/// What any worker stored, every worker serves from its next load on.
///
/// A copy is read again from the store at least every second whatever the generation says,
/// so a writer that died between its commit and the bump, or a `marquee store purge`, delays
/// nothing by more than that.
final class RepresentationCache: Sendable {
    static let maxAgeMillis: UInt64 = 1000
    static let generationCounter = "movies-generation"

    private struct Copy {
        var generation: Int64
        var readAt: UInt64
        var representation: Representation
    }

    private let store: Store
    private let generation: SharedCounter?
    private let copies = NIOLockedValueBox<[String: Copy]>([:])
    /// A hit is a load served from this worker's copy; a miss read the store.
    private let hits = Counter(label: MetricNames.cacheHits, dimensions: [("cache", "movies")])
    private let misses = Counter(label: MetricNames.cacheMisses, dimensions: [("cache", "movies")])

    init(store: Store) {
        self.store = store
        // Without the counter file every load reads the store: slower, never wrong.
        generation = try? store.counter(Self.generationCounter)
    }

    func representation(_ key: String) throws -> Representation? {
        guard let generation else { return try store.withValue(key, Representation.decode) ?? nil }
        // Read before the store: a copy is never labelled newer than the data in it.
        let seen = generation.current
        let now = StoreClock.nowMillis()
        if let copy = copies.withLockedValue({ $0[key] }), copy.generation == seen, now < copy.readAt + Self.maxAgeMillis {
            hits.increment()
            return copy.representation
        }
        misses.increment()
        let stored = try store.withValue(key, Representation.decode) ?? nil
        copies.withLockedValue { $0[key] = stored.map { Copy(generation: seen, readAt: now, representation: $0) } }
        return stored
    }

    /// Called after a commit that replaced a stored representation.
    func replaced() {
        _ = generation?.next()
    }
}
