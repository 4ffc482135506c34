import Foundation
import LMDBStore
import NIOConcurrencyHelpers

/// The host's queue of content events, in the store as state (no time-to-live, never
/// evicted). There is one entry per film URL, keyed by its digest, which is what deduplicates
/// events: a second event for a URL already queued changes nothing. An event that keeps failing
/// is parked after its last attempt and stays visible until an operator requeues it (or a new
/// event for the same URL does).
///
/// Claims are not recorded: the consumer is alone on its host through its pool lease, and
/// walks the queue a page per round from where the last round stopped.
public final class LMDBContentEventQueue: ContentEventQueue {
    let store: Store
    private let cursor = NIOLockedValueBox<String?>(nil)

    public init(store: Store) {
        self.store = store
    }

    public func enqueue(_ films: [FilmURL]) throws -> [ContentEvent.Admission] {
        try store.write(.state, durable: true) { txn in
            var admissions: [ContentEvent.Admission] = []
            var queued: Int64 = 0
            var unparked: Int64 = 0
            for film in films {
                let key = TrailerKeys.queued(digest: film.digest)
                if try txn.entry(key) != nil {
                    admissions.append(.duplicate)
                    continue
                }
                let parked = try txn.delete(TrailerKeys.parked(digest: film.digest))
                let event = ContentEvent(digest: film.digest, url: film.normalised, attempts: 0, nextAt: txn.now, queuedAt: txn.now)
                try txn.put(key, try Self.encoded(event))
                queued += 1
                if parked { unparked += 1 }
                admissions.append(parked ? .requeued : .queued)
            }
            _ = try txn.increment(TrailerKeys.queuedCount, by: queued)
            if unparked > 0 { _ = try txn.increment(TrailerKeys.parkedCount, by: -unparked) }
            _ = try txn.increment(TrailerKeys.acceptedCount, by: Int64(films.count))
            _ = try txn.increment(TrailerKeys.duplicateCount, by: Int64(films.count) - queued)
            return admissions
        }
    }

    public var claimSize: Int { 64 }

    /// The due events of the next page of `limit` queued ones.
    public func claimDue(limit: Int, claimFor: Duration) throws -> [ContentEvent] {
        let page = try events(TrailerKeys.queuePrefix, after: cursor.withLockedValue { $0 }, limit: limit)
        cursor.withLockedValue { $0 = page.count < limit ? nil : page.last.map { TrailerKeys.queued(digest: $0.digest) } }
        let now = StoreClock.nowMillis()
        return page.filter { $0.nextAt <= now }
    }

    /// Up to `limit` events under `prefix` (queued or parked) after the key `cursor`, in key order.
    func events(_ prefix: String, after cursor: String?, limit: Int) throws -> [ContentEvent] {
        try store.read { txn in
            try txn.scan(prefix: prefix, after: cursor, limit: limit).compactMap { key, entry in
                Self.decoded(entry.value, key: key, prefix: prefix)
            }
        }
    }

    public func complete(_ event: ContentEvent) throws {
        try store.write(.state) { txn in
            guard try txn.delete(TrailerKeys.queued(digest: event.digest)) else { return }
            _ = try txn.increment(TrailerKeys.queuedCount, by: -1)
            _ = try txn.increment(TrailerKeys.processedCount)
        }
    }

    public func postpone(_ event: ContentEvent, by delay: Duration) throws {
        let key = TrailerKeys.queued(digest: event.digest)
        try store.write(.state) { txn in
            guard var event = try decode(txn, key) else { return }
            event.nextAt = txn.now + UInt64(delay.nanoseconds / 1_000_000)
            try txn.put(key, try Self.encoded(event))
        }
    }

    @discardableResult
    public func failed(_ event: ContentEvent, error: String, maxAttempts: Int, backoff: Duration) throws -> Bool {
        let key = TrailerKeys.queued(digest: event.digest)
        return try store.write(.state) { txn in
            guard var event = try decode(txn, key) else { return false }
            event.attempts += 1
            event.lastError = error
            guard event.attempts < maxAttempts else {
                event.parkedAt = txn.now
                try txn.delete(key)
                try txn.put(TrailerKeys.parked(digest: event.digest), try Self.encoded(event))
                _ = try txn.increment(TrailerKeys.queuedCount, by: -1)
                _ = try txn.increment(TrailerKeys.parkedCount)
                return true
            }
            let base = Double(backoff.nanoseconds) / 1e6 * pow(2, Double(min(event.attempts - 1, 30)))
            let delay = min(base * Double.random(in: 0.8...1.2), 3_600_000)
            event.nextAt = txn.now + UInt64(delay)
            try txn.put(key, try Self.encoded(event))
            return false
        }
    }

    public func requeueParked() throws -> Int {
        try store.write(.state, durable: true) { txn in
            var moved: Int64 = 0
            for (key, entry) in try txn.scan(prefix: TrailerKeys.parkedPrefix) {
                guard var event = Self.decoded(entry.value, key: key, prefix: TrailerKeys.parkedPrefix) else { continue }
                event.attempts = 0
                event.parkedAt = nil
                event.nextAt = txn.now
                try txn.delete(key)
                let queueKey = TrailerKeys.queued(digest: event.digest)
                if try txn.entry(queueKey) == nil {
                    try txn.put(queueKey, try Self.encoded(event))
                    _ = try txn.increment(TrailerKeys.queuedCount)
                }
                moved += 1
            }
            _ = try txn.increment(TrailerKeys.parkedCount, by: -moved)
            return Int(moved)
        }
    }

    public func figures() throws -> ContentEventFigures {
        try store.read { txn in
            func number(_ key: String) throws -> Int {
                try txn.get(key).flatMap { Int(String(decoding: $0, as: UTF8.self)) } ?? 0
            }
            // A scan of the queue, which is small: events leave it once their trailers are fetched.
            let oldest = try txn.scan(prefix: TrailerKeys.queuePrefix, after: nil, limit: 10_000).compactMap { key, entry in
                Self.decoded(entry.value, key: key, prefix: TrailerKeys.queuePrefix)?.queuedAt
            }.min()
            return ContentEventFigures(queued: try number(TrailerKeys.queuedCount), parked: try number(TrailerKeys.parkedCount),
                                       accepted: try number(TrailerKeys.acceptedCount), duplicates: try number(TrailerKeys.duplicateCount),
                                       processed: try number(TrailerKeys.processedCount),
                                       oldestWaitingAge: oldest.map { .milliseconds(Int64(StoreClock.nowMillis().saturatingSubtract($0))) })
        }
    }

    public func parked(limit: Int) throws -> [ContentEvent] {
        try events(TrailerKeys.parkedPrefix, after: nil, limit: limit)
    }

    private static func encoded(_ event: ContentEvent) throws -> [UInt8] {
        Array(try JSONEncoder().encode(event))
    }

    private static func decoded(_ value: [UInt8], key: String, prefix: String) -> ContentEvent? {
        guard var event = try? JSONDecoder().decode(ContentEvent.self, from: Data(value)) else { return nil }
        event.digest = String(key.dropFirst(prefix.count))
        return event
    }

    private func decode(_ txn: StoreTransaction, _ key: String) throws -> ContentEvent? {
        try txn.entry(key).flatMap { Self.decoded($0.value, key: key, prefix: TrailerKeys.queuePrefix) }
    }
}
