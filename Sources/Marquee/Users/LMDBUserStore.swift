import Foundation
import LMDBStore

/// The users in the embedded store (the default, without MARQUEE_DATABASE_URL). Every key here
/// has no time-to-live, so eviction never touches it: this is state, not cache.
/// - `users/by-id/<id>`: the `UserRecord` (binary, see `RecordCoding`).
/// - `users/by-seq/<sequence, 19 digits>`: the id, in creation order, for stable paging.
/// - `users/streams/<id>`: the `StreamState` (binary); absent until the first grant.
/// - `users/next-sequence`, `users/count`: counters kept in the same transactions.
struct LMDBUserStore: UserStore {
    let store: Store

    enum Key {
        static let userPrefix = "users/by-id/"
        static let sequencePrefix = "users/by-seq/"
        static let streamsPrefix = "users/streams/"
        static let nextSequence = "users/next-sequence"
        static let count = "users/count"

        static func user(_ id: String) -> String { userPrefix + id }
        static func streams(_ id: String) -> String { streamsPrefix + id }

        /// Zero-padded so that key order is numeric order.
        static func sequence(_ sequence: Int64) -> String {
            let digits = String(sequence)
            return sequencePrefix + String(repeating: "0", count: max(0, 19 - digits.count)) + digits
        }
    }

    // MARK: Accounts (synced on commit)

    /// Creates each user that is not there yet and grants it `streams` in the same
    /// transaction, each with a normal lease of `settings`: a player that keeps renewing keeps
    /// its slot, one that is gone frees it when the lease runs out.
    func importAll(_ users: [(user: NewUser, streams: [String])], settings: StreamSettings, batchSize: Int) throws -> [ImportedUser] {
        // Ids are drawn outside the transaction, whose body may run again after an eviction.
        let identified = users.map { (user: $0.user, streams: $0.streams, id: $0.user.id ?? UUID().uuidString.lowercased()) }
        var results: [ImportedUser] = []
        for start in stride(from: 0, to: identified.count, by: batchSize) {
            let batch = identified[start..<min(start + batchSize, identified.count)]
            results += try store.write(.state, durable: true) { transaction in
                try batch.map { entry in
                    let outcome = try Self.insert(entry.user, id: entry.id, in: transaction)
                    guard case .created(let record) = outcome, !entry.streams.isEmpty else { return ImportedUser(outcome: outcome) }
                    var imported = ImportedUser(outcome: outcome)
                    var state = StreamState()
                    let limit = settings.limit(for: record.subscription)
                    for stream in entry.streams {
                        switch state.grant(stream, limit: limit, now: transaction.now, lease: settings.lease) {
                        case .granted: imported.granted.append(stream)
                        case .renewed: break
                        case .refused: imported.refused.append(stream)
                        }
                    }
                    try transaction.put(Key.streams(record.id), state.encoded())
                    return imported
                }
            }
        }
        return results
    }

    private static func insert(_ user: NewUser, id: String, in transaction: StoreTransaction) throws -> UserCreateOutcome {
        if let existing = try transaction.get(Key.user(id)) {
            return .exists(try UserRecord.decode(existing))
        }
        let sequence = try transaction.increment(Key.nextSequence)
        let record = UserRecord(id: id, name: user.name, subscription: user.subscription, createdAt: transaction.now, sequence: sequence)
        try transaction.put(Key.user(id), record.encoded())
        try transaction.put(Key.sequence(sequence), Array(id.utf8))
        _ = try transaction.increment(Key.count)
        return .created(record)
    }

    /// Deletes the user, its listing entry and its streams in one synced transaction.
    func delete(_ id: String) throws -> UserRecord? {
        try store.write(.state, durable: true) { transaction in
            guard let bytes = try transaction.get(Key.user(id)) else { return nil }
            let record = try UserRecord.decode(bytes)
            try transaction.delete(Key.user(id))
            try transaction.delete(Key.sequence(record.sequence))
            try transaction.delete(Key.streams(id))
            _ = try transaction.increment(Key.count, by: -1)
            return record
        }
    }

    // MARK: Reads (one read transaction each)

    func user(_ id: String) throws -> UserSnapshot? {
        try store.read { transaction in
            guard let bytes = try transaction.get(Key.user(id)) else { return nil }
            return UserSnapshot(record: try UserRecord.decode(bytes),
                            streams: try StreamState.decode(transaction.get(Key.streams(id))),
                            now: transaction.now)
        }
    }

    /// Up to `limit` users created after the one with sequence `cursor`, oldest first, and the
    /// cursor of the next page (nil on the last). Users added meanwhile come after every page
    /// already read, so a walk neither repeats nor skips anyone.
    func page(after cursor: Int64?, limit: Int) throws -> (users: [UserSnapshot], nextCursor: Int64?) {
        try store.read { transaction in
            let entries = try transaction.scan(prefix: Key.sequencePrefix, after: cursor.map(Key.sequence), limit: limit + 1)
            var users: [UserSnapshot] = []
            for (_, entry) in entries.prefix(limit) {
                let id = String(decoding: entry.value, as: UTF8.self)
                guard let bytes = try transaction.get(Key.user(id)) else { continue }
                users.append(UserSnapshot(record: try UserRecord.decode(bytes),
                                      streams: try StreamState.decode(transaction.get(Key.streams(id))),
                                      now: transaction.now))
            }
            return (users, entries.count > limit ? users.last?.record.sequence : nil)
        }
    }

    func count() throws -> Int {
        try store.get(Key.count).flatMap { Int(String(decoding: $0, as: UTF8.self)) } ?? 0
    }

    // MARK: Streams (committed, not synced)
    //
    // A committed LMDB transaction survives kill -9 of any process whether or not it was
    // synced: the pages are in the kernel's cache when the commit returns. Syncing would add
    // only power-loss safety, and a lease lives at most MARQUEE_STREAM_LEASE_SECONDS anyway:
    // a grant lost with the power is one the player re-requests. Syncing every grant would cap
    // the pool at the disk's few thousand syncs a second.

    /// The limit check and the grant in one write transaction: LMDB's single writer makes it
    /// atomic across every thread of every worker.
    func grant(_ stream: String, to id: String, settings: StreamSettings) throws -> StreamGrantResult {
        try store.write(.state) { transaction in
            guard let bytes = try transaction.get(Key.user(id)) else { return .unknownUser }
            let limit = settings.limit(for: try UserRecord.decode(bytes).subscription)
            var state = try StreamState.decode(transaction.get(Key.streams(id)))
            let outcome = state.grant(stream, limit: limit, now: transaction.now, lease: settings.lease)
            if case .refused = outcome {} else {
                try transaction.put(Key.streams(id), state.encoded())
            }
            return .decided(outcome, limit: limit)
        }
    }

    func renew(_ stream: String, of id: String, lease: Duration) throws -> StreamLeaseResult<StreamState.Lease> {
        try store.write(.state) { transaction in
            guard try transaction.get(Key.user(id)) != nil else { return .unknownUser }
            var state = try StreamState.decode(transaction.get(Key.streams(id)))
            guard let renewed = state.renew(stream, now: transaction.now, lease: lease) else { return .notActive }
            try transaction.put(Key.streams(id), state.encoded())
            return .done(renewed)
        }
    }

    func release(_ stream: String, of id: String) throws -> StreamLeaseResult<Void> {
        try store.write(.state) { transaction in
            guard try transaction.get(Key.user(id)) != nil else { return .unknownUser }
            var state = try StreamState.decode(transaction.get(Key.streams(id)))
            guard state.release(stream, now: transaction.now) else { return .notActive }
            try transaction.put(Key.streams(id), state.encoded())
            return .done(())
        }
    }
}
