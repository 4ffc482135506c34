import Foundation

/// Where the content events wait: the embedded store (`LMDBContentEventQueue`, the default,
/// one queue per host) or PostgreSQL (`PostgresContentEventQueue`, with MARQUEE_DATABASE_URL,
/// one queue for the cluster). Either keeps one event per film URL, retries a failed one with
/// backoff and parks it after its last attempt.
public protocol ContentEventQueue: Sendable {
    /// Queues `films` in one durable write: when this returns, they survive a crash. A parked
    /// event is queued again with fresh attempts.
    func enqueue(_ films: [FilmURL]) throws -> [ContentEvent.Admission]
    /// How many events one `claimDue` takes: a claim whose holder dies keeps its events from
    /// the others until it runs out, so a queue with claims takes few at a time.
    var claimSize: Int { get }
    /// Up to `limit` due events, this process's to process until `claimFor` has passed.
    func claimDue(limit: Int, claimFor: Duration) throws -> [ContentEvent]
    /// Removes the event: its answer is stored.
    func complete(_ event: ContentEvent) throws
    /// Puts the event off by `delay` without counting an attempt.
    func postpone(_ event: ContentEvent, by delay: Duration) throws
    /// Counts a failed attempt: the event is retried after `backoff` doubled per attempt (with
    /// jitter, capped at an hour), or parked once it has had `maxAttempts`. Answers whether
    /// it was parked.
    @discardableResult
    func failed(_ event: ContentEvent, error: String, maxAttempts: Int, backoff: Duration) throws -> Bool
    /// Moves every parked event back to the queue with fresh attempts; answers how many.
    func requeueParked() throws -> Int
    func figures() throws -> ContentEventFigures
    /// The first `limit` parked events.
    func parked(limit: Int) throws -> [ContentEvent]
}

/// One film URL to onboard, as it waits in the queue.
public struct ContentEvent: Codable, Sendable, Equatable {
    /// The digest of the normalised URL, the event's id in either queue.
    public var digest = ""
    public var url: String
    public var attempts: Int
    /// Milliseconds since the epoch: not processed before.
    public var nextAt: UInt64
    public var queuedAt: UInt64
    public var lastError: String?
    public var parkedAt: UInt64?

    /// The embedded store keeps the digest in the entry's key, not in its value; decoded, it is
    /// empty until the queue sets it.
    enum CodingKeys: String, CodingKey {
        case url, attempts, nextAt, queuedAt, lastError, parkedAt
    }

    public init(digest: String, url: String, attempts: Int, nextAt: UInt64, queuedAt: UInt64,
                lastError: String? = nil, parkedAt: UInt64? = nil) {
        self.digest = digest
        self.url = url
        self.attempts = attempts
        self.nextAt = nextAt
        self.queuedAt = queuedAt
        self.lastError = lastError
        self.parkedAt = parkedAt
    }

    public enum Admission: String, Sendable {
        /// Newly queued.
        case queued
        /// It was parked; it is queued again with fresh attempts.
        case requeued
        /// Already queued (or earlier in the same batch): nothing changed.
        case duplicate
    }

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

public struct ContentEventFigures: Sendable {
    /// Events waiting (due or backing off), pool-wide (cluster-wide with a database).
    public var queued: Int
    public var parked: Int
    public var accepted: Int
    public var duplicates: Int
    public var processed: Int
    /// How long ago the oldest event still waiting (not parked) was queued; nil when none waits.
    /// Read with the counts so that a metrics scrape costs the database one query.
    public var oldestWaitingAge: Duration?
}
