import LMDBStore

/// The durable outbox between a video read and the visits table: the read appends its visit
/// in one synced write, and the pool's one consumer moves visits on in batches. An entry
/// leaves the outbox only in the transaction that stores its visit, so a failed or
/// interrupted move leaves it for the next try, and a repeated one finds the visit there.
public struct VisitOutbox: Sendable {
    let store: Store

    public init(store: Store) {
        self.store = store
    }

    /// Appends `visit`; when this returns, the visit survives a crash of any process.
    public func append(_ visit: Visit) throws {
        try store.write(durable: true) { txn in
            try txn.put(VideoKeys.outbox(visit.visitId), visit.encoded())
            _ = try txn.increment(VideoKeys.enqueued)
        }
    }

    public struct Moved: Sendable, Equatable {
        public var moved: Int
        /// Entries that were already in the visits table (a repeated move).
        public var alreadyStored: Int
        /// Entries that do not decode, set aside under `videos/outbox-rejected/` rather than lost.
        public var rejected: Int
        public var total: Int { moved + alreadyStored + rejected }
    }

    /// Moves up to `limit` of the oldest visits into the visits table, in one synced write.
    public func moveBatch(limit: Int) throws -> Moved {
        try store.write(durable: true) { txn in
            var result = Moved(moved: 0, alreadyStored: 0, rejected: 0)
            for (key, entry) in try txn.scan(prefix: VideoKeys.outboxPrefix, limit: limit) {
                if let visit = Visit.decode(entry.value) {
                    let tableKey = visit.tableKey
                    if try txn.get(tableKey) == nil {
                        try txn.put(tableKey, entry.value)
                        _ = try txn.increment(VideoKeys.visitCount(visit.videoId))
                        result.moved += 1
                    } else {
                        result.alreadyStored += 1
                    }
                } else {
                    try txn.put(VideoKeys.rejectedPrefix + key.dropFirst(VideoKeys.outboxPrefix.count), entry.value)
                    result.rejected += 1
                }
                try txn.delete(key)
            }
            if result.moved + result.alreadyStored > 0 {
                _ = try txn.increment(VideoKeys.moved, by: Int64(result.moved + result.alreadyStored))
            }
            if result.rejected > 0 { _ = try txn.increment(VideoKeys.rejected, by: Int64(result.rejected)) }
            return result
        }
    }

    public struct Figures: Sendable, Equatable {
        public var enqueued: Int
        public var moved: Int
        public var rejected: Int
        public var queued: Int { max(0, enqueued - moved - rejected) }
        /// When the oldest visit still queued happened, in milliseconds since the epoch.
        public var oldestQueuedAt: UInt64?
    }

    /// Pool-wide counts, from the store.
    public func figures() throws -> Figures {
        try store.read { txn in
            func number(_ key: String) throws -> Int {
                try txn.get(key).flatMap { Int(String(decoding: $0, as: UTF8.self)) } ?? 0
            }
            return Figures(enqueued: try number(VideoKeys.enqueued), moved: try number(VideoKeys.moved),
                           rejected: try number(VideoKeys.rejected), oldestQueuedAt: try oldestQueuedAt(txn))
        }
    }

    public func isEmpty() throws -> Bool {
        try store.read { try $0.scan(prefix: VideoKeys.outboxPrefix, limit: 1).isEmpty }
    }

    /// When the oldest visit still queued happened, read from its key alone: health asks often.
    public func oldestQueuedAt() throws -> UInt64? {
        try store.read(oldestQueuedAt)
    }

    private func oldestQueuedAt(_ txn: StoreTransaction) throws -> UInt64? {
        try txn.scan(prefix: VideoKeys.outboxPrefix, limit: 1).first.flatMap { Visit.time(ofId: $0.key.dropFirst(VideoKeys.outboxPrefix.count)) }
    }
}
