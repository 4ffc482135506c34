import LMDBStore
import Logging
import PostgresClient
import Synchronization

/// The pool's one consumer of content events (the cluster's, with a database): whichever
/// worker holds the lease prefetches the answer of each due event, so that the first client
/// request for new content is a hit. Failures are retried with backoff and parked after the
/// configured attempts. No transaction is open while an upstream is called: each step is its
/// own short transaction.
final class ContentEventConsumer: Sendable {
    static let interval: Duration = .milliseconds(200)
    /// At most this many events per round, so that the lease is renewed between rounds.
    static let roundSize = 64
    /// How long an event waits when another process is computing its answer right now.
    static let busyDelay: Duration = .milliseconds(500)

    let lease: PoolLease
    private let queue: any ContentEventQueue
    private let cache: TrailerCache
    private let settings: @Sendable () -> TrailersSettings
    private let logger: @Sendable () -> Logger
    private let processed = Atomic<Int>(0)
    private let failures = Atomic<Int>(0)
    private let parked = Atomic<Int>(0)

    /// `database`: the role is the cluster's, not the host's.
    init(store: Store, queue: any ContentEventQueue, cache: TrailerCache, settings: @escaping @Sendable () -> TrailersSettings,
         database: PostgresClient? = nil, logger: @escaping @Sendable () -> Logger) {
        self.lease = PoolLease(TrailerKeys.consumerLease, store: store, database: database)
        self.queue = queue
        self.cache = cache
        self.settings = settings
        self.logger = logger
    }

    func round() {
        let wasHolding = lease.isHeldHere
        guard lease.claim() else { return }
        if !wasHolding { logger().notice("this worker now consumes the content events") }
        // A claim outlasts one lookup, the longest an event takes, with its wait for another's.
        let claimFor = cache.lookup.upstream.timeouts.total * 2 + .seconds(1)
        var taken = 0
        while taken < Self.roundSize {
            let limit = min(queue.claimSize, Self.roundSize - taken)
            let batch: [ContentEvent]
            do {
                batch = try queue.claimDue(limit: limit, claimFor: claimFor)
            } catch {
                logger().warning("cannot read the content event queue", metadata: ["error": "\(error)"])
                return
            }
            taken += batch.count
            for event in batch {
                // Renews the lease before each event, and ends the round when the worker stops.
                guard lease.claim() else { return }
                process(event)
            }
            // A short batch: nothing more is due now (or, in the embedded store, in this page).
            guard batch.count == limit else { return }
        }
    }

    private func process(_ event: ContentEvent) {
        let settings = settings()
        do {
            guard let film = try? FilmURL.parse(event.url, policy: settings.policy) else {
                try queue.failed(event, error: "no longer an allowed film URL under the current settings", maxAttempts: 1, backoff: .zero)
                parked.add(1, ordering: .relaxed)
                return
            }
            switch cache.prefetch(film, settings: settings) {
            case .stored:
                try queue.complete(event)
                processed.add(1, ordering: .relaxed)
            case .busy:
                try queue.postpone(event, by: Self.busyDelay)
            case .failed(let reason):
                failures.add(1, ordering: .relaxed)
                let wasParked = try queue.failed(event, error: reason, maxAttempts: settings.eventAttempts, backoff: settings.eventBackoff)
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
