import Foundation
import LMDBStore

/// The pool-wide queue of content events, in the store as state (no time-to-live, never
/// evicted). There is one entry per film URL, keyed by its digest, which is what deduplicates
/// events: a second event for a URL already queued changes nothing. An event that keeps failing
/// is parked after its last attempt and stays visible until an operator requeues it (or a new
/// event for the same URL does).
public struct ContentEventQueue: Sendable {
    let store: Store

    public init(store: Store) {
        self.store = store
    }

    public struct Event: Codable, Sendable, Equatable {
        public var url: String
        public var attempts: Int
        /// Milliseconds since the epoch: not processed before.
        public var nextAt: UInt64
        public var queuedAt: UInt64
        public var lastError: String?
        public var parkedAt: UInt64?

        var json: JSONValue {
            var object: [String: JSONValue] = [
                "url": .string(url), "attempts": .int(attempts), "queuedAt": .string(Self.date(queuedAt)),
            ]
            if let lastError { object["lastError"] = .string(lastError) }
            if let parkedAt { object["parkedAt"] = .string(Self.date(parkedAt)) }
            return .object(object)
        }

        private static func date(_ millis: UInt64) -> String {
            Date(timeIntervalSince1970: Double(millis) / 1000).formatted(.iso8601)
        }
    }

    public enum Admission: String, Sendable {
        /// Newly queued.
        case queued
        /// It was parked; it is queued again with fresh attempts.
        case requeued
        /// Already queued (or earlier in the same batch): nothing changed.
        case duplicate
    }

    /// Queues `films` in one durable write: when this returns, they survive a crash.
    public func enqueue(_ films: [FilmURL]) throws -> [Admission] {
        try store.write(.state, durable: true) { txn in
            var admissions: [Admission] = []
            var queued: Int64 = 0
            var unparked: Int64 = 0
            for film in films {
                let key = TrailerKeys.queued(digest: film.digest)
                if try txn.entry(key) != nil {
                    admissions.append(.duplicate)
                    continue
                }
                let parked = try txn.delete(TrailerKeys.parked(digest: film.digest))
                let event = Event(url: film.normalised, attempts: 0, nextAt: txn.now, queuedAt: txn.now)
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

    /// Up to `limit` queued events after the key `cursor`, in key order, due or not.
    func page(after cursor: String?, limit: Int) throws -> [(key: String, event: Event)] {
        try store.read { txn in
            try txn.scan(prefix: TrailerKeys.queuePrefix, after: cursor, limit: limit).compactMap { key, entry in
                (try? JSONDecoder().decode(Event.self, from: Data(entry.value))).map { (key, $0) }
            }
        }
    }

    /// Removes the event: its answer is stored.
    func complete(_ key: String) throws {
        try store.write(.state) { txn in
            guard try txn.delete(key) else { return }
            _ = try txn.increment(TrailerKeys.queuedCount, by: -1)
            _ = try txn.increment(TrailerKeys.processedCount)
        }
    }

    /// Puts the event off by `delay` without counting an attempt.
    func postpone(_ key: String, by delay: Duration) throws {
        try store.write(.state) { txn in
            guard var event = try decode(txn, key) else { return }
            event.nextAt = txn.now + UInt64(delay.nanoseconds / 1_000_000)
            try txn.put(key, try Self.encoded(event))
        }
    }

    /// Counts a failed attempt: the event is retried after `backoff` doubled per attempt (with
    /// jitter, capped at an hour), or parked once it has had `maxAttempts`. Answers whether
    /// it was parked.
    @discardableResult
    func failed(_ key: String, error: String, maxAttempts: Int, backoff: Duration) throws -> Bool {
        try store.write(.state) { txn in
            guard var event = try decode(txn, key) else { return false }
            event.attempts += 1
            event.lastError = error
            guard event.attempts < maxAttempts else {
                event.parkedAt = txn.now
                try txn.delete(key)
                try txn.put(TrailerKeys.parkedPrefix + key.dropFirst(TrailerKeys.queuePrefix.count), try Self.encoded(event))
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

    /// Moves every parked event back to the queue with fresh attempts; answers how many.
    public func requeueParked() throws -> Int {
        try store.write(.state, durable: true) { txn in
            var moved: Int64 = 0
            for (key, entry) in try txn.scan(prefix: TrailerKeys.parkedPrefix) {
                guard var event = try? JSONDecoder().decode(Event.self, from: Data(entry.value)) else { continue }
                event.attempts = 0
                event.parkedAt = nil
                event.nextAt = txn.now
                try txn.delete(key)
                let queueKey = TrailerKeys.queuePrefix + key.dropFirst(TrailerKeys.parkedPrefix.count)
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

    public struct Figures: Sendable {
        /// Events waiting (due or backing off), pool-wide.
        public var queued: Int
        public var parked: Int
        public var accepted: Int
        public var duplicates: Int
        public var processed: Int
    }

    public func figures() throws -> Figures {
        try store.read { txn in
            func number(_ key: String) throws -> Int {
                try txn.get(key).flatMap { Int(String(decoding: $0, as: UTF8.self)) } ?? 0
            }
            return Figures(queued: try number(TrailerKeys.queuedCount), parked: try number(TrailerKeys.parkedCount),
                           accepted: try number(TrailerKeys.acceptedCount), duplicates: try number(TrailerKeys.duplicateCount),
                           processed: try number(TrailerKeys.processedCount))
        }
    }

    /// The first `limit` parked events.
    public func parked(limit: Int) throws -> [Event] {
        try store.read { txn in
            try txn.scan(prefix: TrailerKeys.parkedPrefix, limit: limit).compactMap {
                try? JSONDecoder().decode(Event.self, from: Data($0.entry.value))
            }
        }
    }

    private static func encoded(_ event: Event) throws -> [UInt8] {
        Array(try JSONEncoder().encode(event))
    }

    private func decode(_ txn: StoreTransaction, _ key: String) throws -> Event? {
        try txn.entry(key).flatMap { try? JSONDecoder().decode(Event.self, from: Data($0.value)) }
    }
}
