import LMDBStore
import Synchronization

/// This worker's counts of how trailer requests were answered, for the status page and health.
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
    private let errors = Mutex<[String: Int]>([:])

    func hit() { hits.add(1, ordering: .relaxed) }
    func miss() { misses.add(1, ordering: .relaxed) }
    func invalidURL() { invalidURLs.add(1, ordering: .relaxed) }

    func servedStale() {
        staleServes.add(1, ordering: .relaxed)
        lastStaleAt.store(StoreClock.nowMillis(), ordering: .relaxed)
    }

    func failed(_ code: String) {
        errors.withLock { $0[code, default: 0] += 1 }
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
            "errors": .object(errors.withLock { $0.mapValues { .int($0) } }),
        ])
    }
}
