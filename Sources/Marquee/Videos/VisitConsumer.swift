import LMDBStore
import Logging
import NIOConcurrencyHelpers
import Synchronization

/// Moves visits from the host's outbox into the visit store. Every worker runs a round now and
/// then, but only the holder of the host's lease moves anything; a worker that stops gives
/// the lease up, and one killed outright is replaced as soon as a peer sees its pid is gone.
/// A failed move (the database down, say) is logged once and tried again next round:
/// entries leave the outbox only once the visit store holds them.
final class VisitConsumer: Sendable {
    static let leaseTime: Duration = .seconds(10)
    static let interval: Duration = .milliseconds(200)
    static let batchSize = 500
    /// Bounds one round, so that a stop waits at most for this many synced writes.
    static let batchesPerRound = 20

    private let store: Store
    private let outbox: VisitOutbox
    private let visits: any VisitStore
    private let logger: @Sendable () -> Logger
    /// Held for a whole round; true once stopped.
    private let stopped = NIOLockedValueBox<Bool>(false)
    private let holding = Atomic<Bool>(false)
    private let failures = Atomic<Int>(0)
    /// Set by a failed move, cleared by the next one that works: an outage of the database
    /// is one warning, not five a second.
    private let failing = Atomic<Bool>(false)

    init(store: Store, visits: any VisitStore, logger: @escaping @Sendable () -> Logger) {
        self.store = store
        self.outbox = VisitOutbox(store: store)
        self.visits = visits
        self.logger = logger
    }

    func round() {
        stopped.withLockedValue { stopped in
            guard !stopped else { return }
            guard takeLease() else {
                holding.store(false, ordering: .relaxed)
                return
            }
            if !holding.exchange(true, ordering: .relaxed) { logger().notice("this worker now moves the visits outbox") }
            // A move is a synced write; an idle pool should not flush the disk five times a second.
            guard (try? outbox.isEmpty()) == false else { return }
            for _ in 0..<Self.batchesPerRound {
                do {
                    let batch = try visits.move(from: outbox, limit: Self.batchSize)
                    if failing.exchange(false, ordering: .relaxed) { logger().notice("moving visits works again") }
                    if batch.rejected > 0 {
                        logger().error("visits outbox entries did not decode; set aside", metadata: ["entries": "\(batch.rejected)"])
                    }
                    if batch.total < Self.batchSize { break }
                } catch {
                    failures.add(1, ordering: .relaxed)
                    guard !failing.exchange(true, ordering: .relaxed) else { break }
                    logger().warning("moving visits failed; they stay queued and are tried again", metadata: ["error": "\(error)"])
                    break
                }
            }
        }
    }

    /// Reads before writing, so that the workers that do not hold the lease stay off the write lock.
    private func takeLease() -> Bool {
        do {
            if let lease = try store.lease(VideoKeys.consumerLease), lease.owner != Lease.processOwner,
               lease.state == .held, lease.isLive(at: StoreClock.nowMillis()) {
                return false
            }
            return try store.acquireLease(VideoKeys.consumerLease, ttl: Self.leaseTime)
        } catch {
            logger().warning("cannot take the visits consumer lease", metadata: ["error": "\(error)"])
            return false
        }
    }

    /// Ends the current round, then hands the lease back so that a peer takes over at once.
    func stop() {
        stopped.withLockedValue { stopped in
            stopped = true
            if holding.exchange(false, ordering: .relaxed) { _ = try? store.releaseLease(VideoKeys.consumerLease) }
        }
    }

    var figures: (holding: Bool, failures: Int) {
        (holding.load(ordering: .relaxed), failures.load(ordering: .relaxed))
    }
}
