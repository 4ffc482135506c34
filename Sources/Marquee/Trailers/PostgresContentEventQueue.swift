import PostgresClient

/// The cluster's queue of content events in PostgreSQL (tables `content_events` and
/// `content_event_counters`, Database/Migrations/0005). Every statement is a short transaction
/// of its own and no transaction is open while an upstream is called, so it works through
/// PgBouncer in transaction mode. A consumer claims due rows with `FOR UPDATE SKIP LOCKED`, so
/// two consumers (a lease changing hands) never take the same row, and its later writes match
/// only rows it still holds: an event is processed once in effect. Times are the database's
/// clock, so every host agrees on when an event is due.
public struct PostgresContentEventQueue: ContentEventQueue {
    let client: PostgresClient
    /// Who claims: this process, cluster-wide.
    let owner: String

    public init(client: PostgresClient, owner: String = ClusterLease.processOwner) {
        self.client = client
        self.owner = owner
    }

    private static func millis(_ column: String) -> String { "(extract(epoch FROM \(column)) * 1000)::bigint" }
    private static let columns = "digest, url, attempts, \(millis("next_at")), \(millis("queued_at")), last_error, \(millis("parked_at"))"

    enum Statement {
        /// No row when the URL is queued already; `requeued` when the row was parked.
        static let enqueue = PostgresStatement("content_events_enqueue", """
            INSERT INTO content_events (digest, url, attempts, next_at, queued_at)
            VALUES ($1, $2, 0, clock_timestamp(), clock_timestamp())
            ON CONFLICT (digest) DO UPDATE SET url = excluded.url, attempts = 0, next_at = excluded.next_at,
                queued_at = excluded.queued_at, last_error = NULL, parked_at = NULL, claimed_by = NULL, claimed_until = NULL
            WHERE content_events.parked_at IS NOT NULL
            RETURNING NOT (xmax = 0) AS requeued
            """)
        static let countAdmissions = PostgresStatement("content_events_count_admissions", """
            UPDATE content_event_counters SET value = value + CASE name WHEN 'accepted' THEN $1::bigint ELSE $2::bigint END
            WHERE name IN ('accepted', 'duplicates')
            """)
        static let claim = PostgresStatement("content_events_claim", """
            UPDATE content_events SET claimed_by = $1, claimed_until = clock_timestamp() + $3::bigint * interval '1 millisecond'
            WHERE digest IN (
                SELECT digest FROM content_events
                WHERE parked_at IS NULL AND next_at <= clock_timestamp()
                  AND (claimed_until IS NULL OR claimed_until < clock_timestamp())
                ORDER BY next_at LIMIT $2 FOR UPDATE SKIP LOCKED)
            RETURNING \(columns)
            """)
        static let complete = PostgresStatement("content_events_complete", """
            WITH gone AS (DELETE FROM content_events WHERE digest = $1 AND claimed_by = $2 RETURNING 1)
            UPDATE content_event_counters SET value = value + (SELECT count(*) FROM gone) WHERE name = 'processed'
            """)
        static let postpone = PostgresStatement("content_events_postpone", """
            UPDATE content_events SET next_at = clock_timestamp() + $3::bigint * interval '1 millisecond',
                claimed_by = NULL, claimed_until = NULL
            WHERE digest = $1 AND claimed_by = $2
            """)
        /// The backoff of the embedded store's queue: doubled per attempt from the old count
        /// (the right-hand side sees the row before the update), jitter of ±20 %, at most an hour.
        static let failed = PostgresStatement("content_events_failed", """
            UPDATE content_events SET attempts = attempts + 1, last_error = $3, claimed_by = NULL, claimed_until = NULL,
                parked_at = CASE WHEN attempts + 1 >= $4::integer THEN clock_timestamp() END,
                next_at = clock_timestamp() + least($5::float8 * power(2, least(attempts, 30)) * (0.8 + random() * 0.4), 3600000)
                    * interval '1 millisecond'
            WHERE digest = $1 AND claimed_by = $2
            RETURNING parked_at IS NOT NULL
            """)
        static let requeue = PostgresStatement("content_events_requeue", """
            UPDATE content_events SET attempts = 0, parked_at = NULL, next_at = clock_timestamp(), claimed_by = NULL, claimed_until = NULL
            WHERE parked_at IS NOT NULL
            """)
        static let figures = PostgresStatement("content_events_figures", """
            SELECT count(*) FILTER (WHERE parked_at IS NULL), count(*) FILTER (WHERE parked_at IS NOT NULL),
                   (SELECT value FROM content_event_counters WHERE name = 'accepted'),
                   (SELECT value FROM content_event_counters WHERE name = 'duplicates'),
                   (SELECT value FROM content_event_counters WHERE name = 'processed'),
                   (extract(epoch FROM clock_timestamp() - min(queued_at) FILTER (WHERE parked_at IS NULL)) * 1000)::bigint
            FROM content_events
            """)
        static let parked = PostgresStatement("content_events_parked", """
            SELECT \(columns) FROM content_events WHERE parked_at IS NOT NULL ORDER BY digest LIMIT $1
            """)
        /// An event as another queue holds it; one the database has already is left as it is.
        static let copy = PostgresStatement("content_events_copy", """
            INSERT INTO content_events (digest, url, attempts, next_at, queued_at, last_error, parked_at)
            VALUES ($1, $2, $3::integer, to_timestamp($4::bigint / 1000.0), to_timestamp($5::bigint / 1000.0), $6,
                    to_timestamp($7::bigint / 1000.0))
            ON CONFLICT (digest) DO NOTHING RETURNING 1
            """)
    }

    public func enqueue(_ films: [FilmURL]) throws -> [ContentEvent.Admission] {
        // Two batches naming the same URLs in another order may deadlock: the loser runs again.
        try client.transaction(retries: 3) { connection in
            let results = try connection.execute(films.map { (Statement.enqueue, [$0.digest, $0.normalised]) })
            let admissions: [ContentEvent.Admission] = try results.map { rows in
                guard let row = rows.first else { return .duplicate }
                return try row.bool(0) ? .requeued : .queued
            }
            let duplicates = admissions.filter { $0 == .duplicate }.count
            connection.executeAtCommit(Statement.countAdmissions, [String(films.count), String(duplicates)])
            return admissions
        }
    }

    public var claimSize: Int { 1 }

    public func claimDue(limit: Int, claimFor: Duration) throws -> [ContentEvent] {
        try client.execute(Statement.claim, [owner, String(limit), String(claimFor.millis)]).rows.map(Self.event)
    }

    public func complete(_ event: ContentEvent) throws {
        try client.execute(Statement.complete, [event.digest, owner])
    }

    public func postpone(_ event: ContentEvent, by delay: Duration) throws {
        try client.execute(Statement.postpone, [event.digest, owner, String(delay.millis)])
    }

    @discardableResult
    public func failed(_ event: ContentEvent, error: String, maxAttempts: Int, backoff: Duration) throws -> Bool {
        let rows = try client.execute(Statement.failed, [event.digest, owner, error, String(maxAttempts), String(backoff.millis)])
        return try rows.first?.bool(0) ?? false
    }

    public func requeueParked() throws -> Int {
        try client.execute(Statement.requeue).affected
    }

    public func figures() throws -> ContentEventFigures {
        guard let row = try client.execute(Statement.figures).first else {
            throw PostgresError(.other, message: "the content event figures returned no row")
        }
        return ContentEventFigures(queued: try row.int(0), parked: try row.int(1), accepted: try row.int(2),
                                   duplicates: try row.int(3), processed: try row.int(4),
                                   oldestWaitingAge: row[5].flatMap(Int64.init).map { .milliseconds($0) })
    }

    public func parked(limit: Int) throws -> [ContentEvent] {
        try client.execute(Statement.parked, [String(limit)]).rows.map(Self.event)
    }

    /// Copies events as another queue holds them, in one transaction; answers how many were
    /// new here, the others being left as the database has them.
    func copy(_ events: [ContentEvent]) throws -> Int {
        guard !events.isEmpty else { return 0 }
        return try client.transaction { connection in
            try connection.execute(events.map { event in
                (Statement.copy, [event.digest, event.url, String(event.attempts), String(event.nextAt), String(event.queuedAt),
                                  event.lastError, event.parkedAt.map { String($0) }])
            }).filter { !$0.isEmpty }.count
        }
    }

    private static func event(_ row: PostgresRow) throws -> ContentEvent {
        ContentEvent(digest: try row.string(0), url: try row.string(1), attempts: try row.int(2),
                     nextAt: UInt64(max(0, try row.int64(3))), queuedAt: UInt64(max(0, try row.int64(4))),
                     lastError: row[5], parkedAt: row[6].flatMap(UInt64.init))
    }
}
