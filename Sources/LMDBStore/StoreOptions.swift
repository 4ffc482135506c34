/// Whether a write may use the part of the map kept for state.
public enum WriteClass: Sendable {
    /// Accounts, streams, the catalogue, queues, fill leases: always finds room while the map has any.
    case state
    /// Caches, visits: refused once the map is used past `StoreOptions.disposableCeiling`
    /// and evicting cache entries cannot bring it back below.
    case disposable
}

/// How an environment is opened. Every process of the pool must use the same options.
public struct StoreOptions: Sendable {
    /// What a commit waits for before it returns.
    public enum SyncMode: String, Sendable, CaseIterable {
        /// Commits marked durable are flushed to disk before they return; cache writes are not.
        /// A power loss can lose only the last cache writes, never a durable record.
        case durable
        /// Every commit is flushed to disk before it returns.
        case full
        /// Nothing is flushed by Marquee; the kernel writes back when it likes.
        /// A process crash loses nothing committed, a power loss can lose the last seconds.
        case none
    }

    public var directory: String
    public var maxBytes: Int
    public var sync: SyncMode
    /// Reader slots in the lock file: processes × threads must stay below it.
    public var maxReaders: UInt32
    /// Eviction starts once the pages in use pass this share of the map.
    public var evictAbove: Double
    /// Eviction stops once the pages in use fall below this share of the map.
    public var evictDownTo: Double
    /// The share of the map kept for state writes: a disposable write that would leave the
    /// pages in use above `disposableCeiling` is refused once eviction cannot make room.
    public var reserve: Double
    public var disposableCeiling: Double { 1 - reserve }
    /// The start of the names under which the store reports through swift-metrics.
    public var metricsPrefix = "lmdb_store"

    public init(
        directory: String,
        maxBytes: Int = 1 << 30,
        sync: SyncMode = .durable,
        maxReaders: UInt32 = 1024,
        evictAbove: Double = 0.80,
        evictDownTo: Double = 0.65,
        reserve: Double = 0.15
    ) {
        self.directory = directory
        self.maxBytes = maxBytes
        self.sync = sync
        self.maxReaders = maxReaders
        self.evictAbove = evictAbove
        self.evictDownTo = evictDownTo
        self.reserve = reserve
    }
}
