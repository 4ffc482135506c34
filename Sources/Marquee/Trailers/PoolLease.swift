import LMDBStore
import NIOConcurrencyHelpers
import PostgresClient

/// A pool-wide lease that makes one background loop run in exactly one worker at a time.
/// Every worker claims it each round; the holder renews it, the others read it and go on.
/// A worker that stops hands it back at once, and one killed outright is replaced as soon as a
/// peer on the host sees that its pid is gone (or after `ttl` from another host).
///
/// With a `cluster` lease (a database), the role is the whole cluster's: the host's holder
/// must also hold the cluster-wide row, so one worker of one host runs the loop, and when that
/// host dies another host's holder takes the row once it expires.
final class PoolLease: Sendable {
    let name: String
    private let store: Store
    private let ttl: Duration
    private let cluster: ClusterLease?
    private let state = NIOLockedValueBox<(stopped: Bool, holding: Bool, holdingCluster: Bool)>((false, false, false))

    init(_ name: String, store: Store, ttl: Duration = .seconds(10), cluster: ClusterLease? = nil) {
        self.name = name
        self.store = store
        self.ttl = ttl
        self.cluster = cluster
    }

    /// How long a dead host keeps a cluster-wide role before another host takes it. A holder
    /// renews its lease before each step of its loop (an event, a refresh), which lasts about
    /// one upstream call: 5 s outlasts that gap, yet leaves a role idle for only a few seconds
    /// once its host dies.
    static let clusterLeaseTTL: Duration = .seconds(5)

    /// The lease of a role that is the host's, or with a `database` the whole cluster's.
    convenience init(_ name: String, store: Store, database: PostgresClient?) {
        self.init(name, store: store, cluster: database.map { ClusterLease(name, database: $0, ttl: Self.clusterLeaseTTL) })
    }

    /// Takes or renews the lease; false when another worker holds it or this one is stopping.
    func claim() -> Bool {
        state.withLockedValue { state in
            guard !state.stopped else { return false }
            do {
                // Read first, so that the workers that do not hold it stay off the write lock.
                if let lease = try store.lease(name), lease.owner != Lease.processOwner, lease.state == .held,
                   lease.isLive(at: StoreClock.nowMillis()) {
                    state.holding = false
                    return false
                }
                state.holding = try store.acquireLease(name, ttl: ttl)
            } catch {
                state.holding = false
            }
            guard state.holding, let cluster else { return state.holding }
            // A database that cannot be reached holds the role nowhere: safe for a loop whose
            // work is worth skipping rather than doing twice.
            state.holdingCluster = (try? cluster.claim()) ?? false
            return state.holdingCluster
        }
    }

    /// Stops claiming and gives the lease back if held.
    func stop() {
        state.withLockedValue { state in
            state.stopped = true
            if state.holding { _ = try? store.releaseLease(name) }
            if state.holdingCluster { cluster?.release() }
            state.holding = false
            state.holdingCluster = false
        }
    }

    var isStopped: Bool { state.withLockedValue { $0.stopped } }
    var isHeldHere: Bool { state.withLockedValue { $0.holding && (cluster == nil || $0.holdingCluster) } }

    /// `pid@host` of the live holder, pool-wide (cluster-wide with a database), if any.
    var holder: String? {
        if let cluster { return try? cluster.holder() }
        guard let lease = try? store.lease(name), lease.state == .held, lease.isLive(at: StoreClock.nowMillis()) else { return nil }
        return lease.owner
    }
}
