import Foundation
import PostgresClient

/// Upstream answers shared by every host through the database, each with its time to live, and
/// fetched by one process cluster-wide at a time: a host that misses its own LMDB cache finds
/// another host's answer here before it calls the upstream, and while one host fetches a key
/// the others wait for its answer instead of calling too.
///
/// Only misses come here: hits are served from each host's LMDB, which keeps a copy until the
/// answer's own expiry. When the database cannot be reached the caller calls the upstream
/// itself (availability first; the quota is at risk only while the database is down).
public struct ClusterFlight: Sendable {
    private let database: PostgresClient

    public init(database: PostgresClient) {
        self.database = database
    }

    public struct Answer: Sendable {
        public var value: [UInt8]
        /// How long ago the upstream answered, and how long the answer stays fresh, by the
        /// database's clock: durations, so that a host's own clock skew does not matter.
        public var age: Duration
        public var remaining: Duration

        init(value: [UInt8], row: PostgresRow?, from column: Int) throws(PostgresError) {
            self.value = value
            age = .milliseconds(max(0, try row?.int64(column) ?? 0))
            remaining = .milliseconds(max(0, try row?.int64(column + 1) ?? 0))
        }
    }

    /// The wait for another host's fetch ran out.
    public struct Timeout: Error, CustomStringConvertible {
        public let key: String
        public var description: String { "waited too long for another host's answer to \(key)" }
    }

    static let freshStatement = PostgresStatement("upstream_answer_fresh", """
        SELECT value, (extract(epoch FROM clock_timestamp() - fetched_at) * 1000)::bigint,
               (extract(epoch FROM expires_at - clock_timestamp()) * 1000)::bigint
        FROM upstream_answers WHERE key = $1 AND expires_at > clock_timestamp()
        """)
    static let storeStatement = PostgresStatement("upstream_answer_store", """
        INSERT INTO upstream_answers (key, value, fetched_at, expires_at)
        VALUES ($1, $2::bytea, clock_timestamp(), clock_timestamp() + $3::bigint * interval '1 millisecond')
        ON CONFLICT (key) DO UPDATE SET value = excluded.value, fetched_at = excluded.fetched_at, expires_at = excluded.expires_at
        RETURNING 0::bigint, (extract(epoch FROM expires_at - fetched_at) * 1000)::bigint
        """)
    /// A page of the fresh answers under a prefix, in key order. `starts_with` rather than a key
    /// range: the column's collation need not order the prefix's keys together.
    static let pageStatement = PostgresStatement("upstream_answer_page", """
        SELECT key, value, (extract(epoch FROM clock_timestamp() - fetched_at) * 1000)::bigint
        FROM upstream_answers
        WHERE key > $1 AND starts_with(key, $2) AND expires_at > clock_timestamp()
        ORDER BY key LIMIT $3
        """)
    /// Answers are replaced per key; this drops those nobody asked for again in a day.
    static let pruneStatement = PostgresStatement("upstream_answer_prune",
                                                  "DELETE FROM upstream_answers WHERE expires_at < clock_timestamp() - interval '1 day'")

    public struct Stored: Sendable {
        public var key: String
        public var value: [UInt8]
        /// How long ago the upstream answered, by the database's clock.
        public var age: Duration
    }

    /// Up to `limit` fresh answers whose keys start with `prefix`, in key order after `after`:
    /// every host's, not only those this host has cached.
    public func page(prefix: String, after: String?, limit: Int) throws(PostgresError) -> [Stored] {
        try database.execute(Self.pageStatement, [after ?? prefix, prefix, String(limit)]).rows.map { row throws(PostgresError) in
            Stored(key: try row.string(0), value: try row.bytes(1) ?? [], age: .milliseconds(max(0, try row.int64(2))))
        }
    }

    /// The fresh answer for `key`, if some host stored one.
    public func fresh(_ key: String) throws(PostgresError) -> Answer? {
        guard let row = try database.execute(Self.freshStatement, [key]).first else { return nil }
        return try Answer(value: try row.bytes(0) ?? [], row: row, from: 1)
    }

    /// The fresh answer for `key`: the stored one, else the one `fetch` returns (with its time
    /// to live), fetched by one caller cluster-wide while the others wait, up to `wait`.
    /// `refetch` skips the stored answer and fetches anyway (a re-validation), still alone.
    /// Throws `fetch`'s own error when this caller fetched and failed, `PostgresError` when the
    /// database cannot be used, `Timeout` when another host's fetch outlasted `wait`.
    public func answer(_ key: String, wait: Duration, refetch: Bool = false,
                       fetch: () throws -> (value: [UInt8], ttl: Duration)) throws -> Answer {
        let deadline = ContinuousClock.now + wait
        // An owner of its own per call: two threads of one process must not share a fill.
        let fill = ClusterLease("fill/" + key, database: database, ttl: wait,
                                owner: "\(ClusterLease.processOwner)/\(String(UInt64.random(in: 1...UInt64.max), radix: 16))")
        var mayUseStored = !refetch
        while true {
            if mayUseStored, let stored = try fresh(key) { return stored }
            if try fill.claim() {
                defer { fill.release() }
                // Another host may have stored it between the read and the claim.
                if mayUseStored, let stored = try fresh(key) { return stored }
                let fetched = try fetch()
                let row = try database.execute(Self.storeStatement, [key, PostgresRow.hex(fetched.value), String(fetched.ttl.millis)]).first
                if UInt8.random(in: 0...99) == 0 { _ = try? database.execute(Self.pruneStatement) }
                return try Answer(value: fetched.value, row: row, from: 0)
            }
            // Someone else fetches: from now on its answer is as good as a re-validation.
            mayUseStored = true
            guard ContinuousClock.now < deadline else { throw Timeout(key: key) }
            Thread.sleep(forTimeInterval: 0.02)
        }
    }
}
