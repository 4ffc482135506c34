import LMDBStore
import Logging
import Synchronization

/// The pool's one consumer of content events: whichever worker holds the lease prefetches the
/// answer of each due event, so that the first client request for new content is a hit.
/// Failures are retried with backoff and parked after the configured attempts. No store
/// transaction is open while an upstream is called: each step is its own short transaction.
final class ContentEventConsumer: Sendable {
    static let interval: Duration = .milliseconds(200)
    static let pageSize = 64
    /// How long an event waits when another process is computing its answer right now.
    static let busyDelay: Duration = .milliseconds(500)

    let lease: PoolLease
    private let queue: ContentEventQueue
    private let cache: TrailerCache
    private let settings: @Sendable () -> TrailersSettings
    private let logger: @Sendable () -> Logger
    private let cursor = Mutex<String?>(nil)
    private let processed = Atomic<Int>(0)
    private let failures = Atomic<Int>(0)
    private let parked = Atomic<Int>(0)

    init(store: Store, cache: TrailerCache, settings: @escaping @Sendable () -> TrailersSettings,
         logger: @escaping @Sendable () -> Logger) {
        self.lease = PoolLease(TrailerKeys.consumerLease, store: store)
        self.queue = ContentEventQueue(store: store)
        self.cache = cache
        self.settings = settings
        self.logger = logger
    }

    func round() {
        let wasHolding = lease.isHeldHere
        guard lease.claim() else { return }
        if !wasHolding { logger().notice("this worker now consumes the content events") }
        let page: [(key: String, event: ContentEventQueue.Event)]
        do {
            page = try queue.page(after: cursor.withLock { $0 }, limit: Self.pageSize)
        } catch {
            logger().warning("cannot read the content event queue", metadata: ["error": "\(error)"])
            return
        }
        cursor.withLock { $0 = page.count < Self.pageSize ? nil : page.last?.key }
        let now = StoreClock.nowMillis()
        for (key, event) in page where event.nextAt <= now {
            // Renews the lease before each event, and ends the round when the worker stops.
            guard lease.claim() else { return }
            process(key, event)
        }
    }

    private func process(_ key: String, _ event: ContentEventQueue.Event) {
        let settings = settings()
        do {
            guard let film = try? FilmURL.parse(event.url, policy: settings.policy) else {
                try queue.failed(key, error: "no longer an allowed film URL under the current settings", maxAttempts: 1, backoff: .zero)
                parked.add(1, ordering: .relaxed)
                return
            }
            switch cache.prefetch(film, settings: settings) {
            case .stored:
                try queue.complete(key)
                processed.add(1, ordering: .relaxed)
            case .busy:
                try queue.postpone(key, by: Self.busyDelay)
            case .failed(let reason):
                failures.add(1, ordering: .relaxed)
                let wasParked = try queue.failed(key, error: reason, maxAttempts: settings.eventAttempts, backoff: settings.eventBackoff)
                if wasParked {
                    parked.add(1, ordering: .relaxed)
                    logger().error("content event parked after its last attempt", metadata: [
                        "url": "\(event.url)", "attempts": "\(event.attempts + 1)", "error": "\(reason)",
                    ])
                }
            }
        } catch {
            logger().warning("cannot update the content event queue", metadata: ["url": "\(event.url)", "error": "\(error)"])
        }
    }

    func stop() {
        lease.stop()
    }

    /// What this worker did as the consumer.
    var status: JSONValue {
        .object([
            "holder": lease.holder.map(JSONValue.string) ?? .null,
            "thisWorker": .bool(lease.isHeldHere),
            "processedHere": .int(processed.load(ordering: .relaxed)),
            "failedAttemptsHere": .int(failures.load(ordering: .relaxed)),
            "parkedHere": .int(parked.load(ordering: .relaxed)),
        ])
    }
}
