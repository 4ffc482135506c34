import Foundation
import LMDBStore

/// The outbox between a video read and the visit store: the read appends its visit in one
/// commit that does not wait for the disk, and the pool's one consumer moves visits on in
/// batches, each move flushed to disk. An entry leaves the outbox only once the visit store
/// holds its visit (in the same transaction for the embedded store, after the commit for
/// PostgreSQL), so a failed or interrupted move leaves it for the next try.
///
/// What a crash can lose: a kill -9 of any process loses no appended visit. A power loss or
/// kernel crash can lose the visits appended since the last flush: those of the last
/// consumer interval while a consumer runs, at most `maxQueued` when none does (any durable
/// write of another feature flushes them too).
///
/// Every write of visit state goes through `write(durable:_:)`, as a disposable write: near a
/// full map, visits are refused before accounts, streams and the catalogue are.
public struct VisitOutbox: Sendable {
    let store: Store
    /// Part of the id this outbox's batches go under: a store directory copied to a second
    /// host copies the stored half of the id and the batch numbers with it, and the database
    /// would skip the second host's batches as ones it already has.
    let host: String
    /// Visits waiting to be moved, pool-wide; a read past it is refused rather than stored.
    public static let maxQueued = 50_000

    public init(store: Store, host: String = Lease.hostName) {
        self.store = store
        self.host = host
    }

    public struct Full: Error, CustomStringConvertible {
        public var description: String { "the visits outbox holds \(VisitOutbox.maxQueued) visits" }
    }

    /// Appends `visit`; when this returns, the visit survives a crash of any process (see the
    /// type's comment for a power loss). Throws `Full` when the outbox is at its cap. A visit
    /// already waiting under its id (nginx retried the read after the worker that recorded it
    /// died) is left as it is.
    public func append(_ visit: Visit) throws {
        try write(durable: false) { txn in
            guard try txn.get(VideoKeys.outbox(visit.visitId)) == nil else { return }
            let enqueued = try Self.number(txn, VideoKeys.enqueued)
            let left = try Self.number(txn, VideoKeys.moved) + Self.number(txn, VideoKeys.rejected)
            guard enqueued - left < Self.maxQueued else { throw Full() }
            try txn.put(VideoKeys.outbox(visit.visitId), visit.encoded())
            _ = try txn.increment(VideoKeys.enqueued)
        }
    }

    /// The one place visit state is written.
    func write<T>(durable: Bool, _ body: (StoreTransaction) throws -> T) throws -> T {
        try store.write(.disposable, durable: durable, body)
    }

    static func number(_ txn: StoreTransaction, _ key: String) throws -> Int {
        try txn.get(key).flatMap { Int(String(decoding: $0, as: UTF8.self)) } ?? 0
    }

    public struct Moved: Sendable, Equatable {
        public var moved: Int
        /// Entries that were already in the visits table (a repeated move).
        public var alreadyStored: Int
        /// Entries that do not decode, set aside under `videos/outbox-rejected/` rather than lost.
        public var rejected: Int
        public var total: Int { moved + alreadyStored + rejected }
    }

    /// Moves up to `limit` of the oldest visits into the embedded visits table, in one synced
    /// write that also drops each touched video's visits beyond the newest `Visit.recentKept`.
    public func moveBatch(limit: Int) throws -> Moved {
        try write(durable: true) { txn in
            var result = Moved(moved: 0, alreadyStored: 0, rejected: 0)
            var added: [String: Int] = [:]
            for (key, entry) in try txn.scan(prefix: VideoKeys.outboxPrefix, limit: limit) {
                if let visit = Visit.decode(entry.value) {
                    let tableKey = visit.tableKey
                    if try txn.get(tableKey) == nil {
                        try txn.put(tableKey, entry.value)
                        _ = try txn.increment(VideoKeys.visitCount(visit.videoId))
                        added[visit.videoId, default: 0] += 1
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
            for (videoId, count) in added {
                try LMDBVisitStore.trim(videoId, added: count, in: txn)
            }
            if result.moved + result.alreadyStored > 0 {
                _ = try txn.increment(VideoKeys.moved, by: Int64(result.moved + result.alreadyStored))
            }
            if result.rejected > 0 { _ = try txn.increment(VideoKeys.rejected, by: Int64(result.rejected)) }
            return result
        }
    }

    /// A batch on its way to a store outside this one, under a number that store remembers per
    /// `mover`: a batch sent twice (its sender died after the commit, before `release`) is
    /// recognised by the number, even where the store already trimmed its visits away.
    struct Claim: Sendable {
        var mover: String
        var number: Int64
        var entries: [(key: String, value: [UInt8])]
    }

    /// The batch claimed earlier and not released, else up to `limit` of the oldest entries
    /// claimed under the next number, in one synced write: the claim must outlive a crash that
    /// the other store's commit survives. Nil when there is nothing to move.
    func claim(limit: Int) throws -> Claim? {
        // Read first: while the other store is down, retrying the same claim flushes nothing.
        if let pending = try store.read(pendingClaim) { return pending }
        // Drawn outside the transaction, whose body may run again.
        let newMover = UUID().uuidString.lowercased()
        return try write(durable: true) { txn in
            if let pending = try pendingClaim(txn) { return pending }
            let stored: String
            if let existing = try txn.get(VideoKeys.mover) {
                stored = String(decoding: existing, as: UTF8.self)
            } else {
                stored = newMover
                try txn.put(VideoKeys.mover, Array(stored.utf8))
            }
            let mover = moverID(stored)
            let entries = try txn.scan(prefix: VideoKeys.outboxPrefix, limit: limit).map { (key: $0.key, value: $0.entry.value) }
            guard !entries.isEmpty else { return nil }
            let number = try txn.increment(VideoKeys.claims)
            try txn.put(VideoKeys.claim, Array(([String(number)] + entries.map(\.key)).joined(separator: "\n").utf8))
            return Claim(mover: mover, number: number, entries: entries)
        }
    }

    /// The claim stored as its number and its keys, a line each.
    private func pendingClaim(_ txn: StoreTransaction) throws -> Claim? {
        guard let mover = try txn.get(VideoKeys.mover), let pending = try txn.get(VideoKeys.claim) else { return nil }
        let lines = String(decoding: pending, as: UTF8.self).split(separator: "\n").map(String.init)
        guard let number = lines.first.flatMap({ Int64($0) }) else { return nil }
        let entries = try lines.dropFirst().compactMap { key in try txn.get(key).map { (key: key, value: $0) } }
        return Claim(mover: moverID(String(decoding: mover, as: UTF8.self)), number: number, entries: entries)
    }

    private func moverID(_ stored: String) -> String {
        host + "/" + stored
    }

    /// Ends a claim once the other store committed it: its entries leave the outbox (those that
    /// do not decode set aside), in one synced write. `added` is how many visits the store took
    /// as new.
    func release(_ claim: Claim, added: Int) throws -> Moved {
        try write(durable: true) { txn in
            var left = 0
            var rejected = 0
            for (key, value) in claim.entries {
                // Gone already: the embedded consumer moved it while the database was not configured.
                guard try txn.delete(key) else { continue }
                if Visit.decode(value) == nil {
                    try txn.put(VideoKeys.rejectedPrefix + key.dropFirst(VideoKeys.outboxPrefix.count), value)
                    rejected += 1
                } else {
                    left += 1
                }
            }
            _ = try txn.delete(VideoKeys.claim)
            if left > 0 { _ = try txn.increment(VideoKeys.moved, by: Int64(left)) }
            if rejected > 0 { _ = try txn.increment(VideoKeys.rejected, by: Int64(rejected)) }
            let moved = min(added, left)
            return Moved(moved: moved, alreadyStored: left - moved, rejected: rejected)
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
            Figures(enqueued: try Self.number(txn, VideoKeys.enqueued), moved: try Self.number(txn, VideoKeys.moved),
                    rejected: try Self.number(txn, VideoKeys.rejected), oldestQueuedAt: try oldestQueuedAt(txn))
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
