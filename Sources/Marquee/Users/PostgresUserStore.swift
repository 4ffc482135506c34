import Foundation
import PostgresClient

/// The users in PostgreSQL (table `users`, its leases in the row's `streams` array: Database/
/// Migrations/0001 and 0006). A grant, renewal or release locks the user's row (`SELECT … FOR
/// UPDATE`), decides with the same `StreamState` rules as the embedded store, and rewrites the
/// user's leases before it commits: two hosts granting to one user wait for each other, so the
/// limit is exact.
/// Times come from the database's clock, so every host agrees on when a lease runs out.
struct PostgresUserStore: UserStore {
    let client: PostgresClient

    private static let nowMillis = "(extract(epoch from clock_timestamp()) * 1000)::bigint"

    enum Statement {
        static let insert = PostgresStatement("users_insert", """
            INSERT INTO users (id, name, subscription, created_at) VALUES ($1, $2, $3, \(nowMillis))
            ON CONFLICT (id) DO NOTHING RETURNING sequence, created_at
            """)
        static let record = PostgresStatement("users_record", """
            SELECT id, name, subscription, created_at, sequence FROM users WHERE id = $1
            """)
        /// The decision and the write in the database, under the user's row lock, as one
        /// statement: the lock is held for no round trip (Database/Migrations/0006).
        static let grant = PostgresStatement("users_stream_grant", "SELECT * FROM stream_grant($1, $2, $3, $4, $5, $6)")
        static let touch = PostgresStatement("users_stream_touch", "SELECT * FROM stream_touch($1, $2, $3)")
        static let read = PostgresStatement("users_read", """
            SELECT u.id, u.name, u.subscription, u.created_at, u.sequence, u.last_online, \(nowMillis),
                   s.stream, s.started_at, s.expires_at
            FROM users u LEFT JOIN LATERAL unnest(u.streams) s ON true
            WHERE u.id = $1 ORDER BY s.started_at
            """)
        /// Replaces the user's leases with the arrays given, in their order, and its
        /// last-online time.
        static let writeStreams = PostgresStatement("users_write_streams", """
            UPDATE users SET last_online = $2, streams = ARRAY(
                SELECT ROW(lower(t.stream), t.stream, t.started_at, t.expires_at)::stream_lease
                FROM unnest($3::text[], $4::bigint[], $5::bigint[]) WITH ORDINALITY AS t (stream, started_at, expires_at, place)
                ORDER BY t.place)
            WHERE id = $1
            """)
        static let delete = PostgresStatement("users_delete", """
            DELETE FROM users WHERE id = $1 RETURNING id, name, subscription, created_at, sequence
            """)
        static let page = PostgresStatement("users_page", """
            SELECT u.id, u.name, u.subscription, u.created_at, u.sequence, u.last_online, \(nowMillis),
                   s.stream, s.started_at, s.expires_at
            FROM (SELECT * FROM users WHERE sequence > $1 ORDER BY sequence LIMIT $2) u
            LEFT JOIN LATERAL unnest(u.streams) s ON true
            ORDER BY u.sequence, s.started_at
            """)
        static let count = PostgresStatement("users_count", "SELECT count(*) FROM users")
        static let copy = PostgresStatement("users_copy", """
            INSERT INTO users (id, name, subscription, created_at) VALUES ($1, $2, $3, $4)
            ON CONFLICT (id) DO NOTHING RETURNING id
            """)
    }

    // MARK: Accounts

    func importAll(_ users: [(user: NewUser, streams: [String])], settings: StreamSettings, batchSize: Int) throws -> [ImportedUser] {
        var results: [ImportedUser] = []
        for start in stride(from: 0, to: users.count, by: batchSize) {
            let batch = users[start..<min(start + batchSize, users.count)]
            results += try client.transaction { connection in
                try batch.map { entry in
                    let id = entry.user.id ?? UUID().uuidString.lowercased()
                    let inserted = try connection.execute(Statement.insert, [id, entry.user.name, entry.user.subscription])
                    guard let row = inserted.first else {
                        guard let existing = try connection.execute(Statement.record, [id]).first else {
                            throw PostgresError(.serialization, message: "user \(id) deleted while being created")
                        }
                        return ImportedUser(outcome: .exists(try Self.record(existing)))
                    }
                    let createdAt = UInt64(try row.int64(1))
                    let record = UserRecord(id: id, name: entry.user.name, subscription: entry.user.subscription,
                                            createdAt: createdAt, sequence: try row.int64(0))
                    var imported = ImportedUser(outcome: .created(record))
                    guard !entry.streams.isEmpty else { return imported }
                    var state = StreamState()
                    let limit = settings.limit(for: record.subscription)
                    for stream in entry.streams {
                        switch state.grant(stream, limit: limit, now: createdAt, lease: settings.lease) {
                        case .granted: imported.granted.append(stream)
                        case .renewed: break
                        case .refused: imported.refused.append(stream)
                        }
                    }
                    try Self.write(state, of: id, on: connection)
                    return imported
                }
            }
        }
        return results
    }

    func delete(_ id: String) throws -> UserRecord? {
        try client.execute(Statement.delete, [id]).first.map(Self.record)
    }

    /// Copies users as another store holds them (creation time, order of the batch, leases as
    /// they stand), one transaction per batch; an id already present is skipped and left as it is.
    func copy(_ users: [UserSnapshot]) throws -> (copied: Int, skipped: Int) {
        try client.transaction { connection in
            var copied = 0
            for user in users {
                let record = user.record
                let inserted = try connection.execute(Statement.copy, [record.id, record.name, record.subscription, String(record.createdAt)])
                guard !inserted.isEmpty else { continue }
                copied += 1
                if user.streams.lastOnline != nil || !user.streams.leases.isEmpty {
                    try Self.write(user.streams, of: record.id, on: connection)
                }
            }
            return (copied, users.count - copied)
        }
    }

    // MARK: Reads

    func user(_ id: String) throws -> UserSnapshot? {
        Self.snapshots(try client.execute(Statement.read, [id])).first
    }

    func page(after cursor: Int64?, limit: Int) throws -> (users: [UserSnapshot], nextCursor: Int64?) {
        let users = Self.snapshots(try client.execute(Statement.page, [String(cursor ?? 0), String(limit + 1)]))
        let page = Array(users.prefix(limit))
        return (page, users.count > limit ? page.last?.record.sequence : nil)
    }

    func count() throws -> Int {
        try client.execute(Statement.count).first?.int(0) ?? 0
    }

    // MARK: Streams

    func grant(_ stream: String, to id: String, settings: StreamSettings) throws -> StreamGrantResult {
        let plans = settings.planLimits.sorted { $0.key < $1.key }
        let rows = try client.execute(Statement.grant, [
            id, stream, String(settings.lease.millis), String(settings.defaultLimit),
            Self.arrayLiteral(plans.map(\.key)), Self.arrayLiteral(plans.map { String($0.value) }),
        ])
        guard let first = rows.first, first[0] != "unknown_user" else { return .unknownUser }
        let limit = try first.int(1)
        let leases = rows.rows.compactMap(Self.lease)
        let subject = rows.rows.first { $0[6] == "t" }.flatMap(Self.lease)
        let outcome: StreamState.GrantOutcome
        switch (first[0] ?? "", subject) {
        case ("granted", let lease?): outcome = .granted(lease, active: leases.count)
        case ("renewed", let lease?): outcome = .renewed(lease, active: leases.count)
        case ("refused", _): outcome = .refused(active: leases)
        default: throw PostgresError(.other, message: "stream_grant answered \(first[0] ?? "nothing") without its lease")
        }
        let result = StreamGrantResult.decided(outcome, limit: limit)
        StreamMetrics.record(result, expired: try first.int(2))
        return result
    }

    func renew(_ stream: String, of id: String, lease: Duration) throws -> StreamLeaseResult<StreamState.Lease> {
        try touch(stream, of: id, leaseMillis: max(1, lease.millis))
    }

    func release(_ stream: String, of id: String) throws -> StreamLeaseResult<Void> {
        switch try touch(stream, of: id, leaseMillis: 0) {
        case .unknownUser: .unknownUser
        case .notActive: .notActive
        case .done: .done(())
        }
    }

    /// A heartbeat (`leaseMillis` > 0) or a release (0), decided in the database.
    private func touch(_ stream: String, of id: String, leaseMillis: UInt64) throws -> StreamLeaseResult<StreamState.Lease> {
        guard let row = try client.execute(Statement.touch, [id, stream, String(leaseMillis)]).first else {
            throw PostgresError(.other, message: "stream_touch answered no row")
        }
        switch row[0] {
        case "unknown_user": return .unknownUser
        case "not_active": return .notActive
        default:
            guard let lease = Self.lease(row, from: 1) else {
                throw PostgresError(.other, message: "stream_touch answered \(row[0] ?? "nothing") without its lease")
            }
            return .done(lease)
        }
    }

    /// The lease in a row's (stream, started_at, expires_at) columns from `column`.
    private static func lease(_ row: PostgresRow, from column: Int) -> StreamState.Lease? {
        guard let stream = row[column], let started = row[column + 1].flatMap(UInt64.init),
              let expires = row[column + 2].flatMap(UInt64.init) else { return nil }
        return StreamState.Lease(stream: stream, key: Identifier.streamKey(stream), startedAt: started, expiresAt: expires)
    }

    private static func lease(_ row: PostgresRow) -> StreamState.Lease? {
        lease(row, from: 3)
    }

    private static func write(_ state: StreamState, of id: String, on connection: PostgresConnection) throws {
        let parameters = [
            id, state.lastOnline.map { String($0) },
            arrayLiteral(state.leases.map(\.stream)),
            arrayLiteral(state.leases.map { String($0.startedAt) }),
            arrayLiteral(state.leases.map { String($0.expiresAt) }),
        ]
        try connection.execute(Statement.writeStreams, parameters)
    }

    /// A text-format array. Stream ids are letters, digits, '.', '_' and '-' (Identifier), and
    /// the quoting covers anything else.
    private static func arrayLiteral(_ values: [String]) -> String {
        "{" + values.map { "\"" + $0.replacing("\\", with: "\\\\").replacing("\"", with: "\\\"") + "\"" }.joined(separator: ",") + "}"
    }

    // MARK: Rows

    private static func record(_ row: PostgresRow) throws -> UserRecord {
        UserRecord(id: try row.string(0), name: try row.string(1), subscription: try row.string(2),
                   createdAt: UInt64(try row.int64(3)), sequence: try row.int64(4))
    }

    /// Users from rows of (record, last_online, now, stream, started_at, expires_at), one row
    /// per lease, a user's rows together; the lease columns may be absent.
    private static func snapshots(_ rows: PostgresRows) -> [UserSnapshot] {
        var users: [UserSnapshot] = []
        for row in rows.rows {
            guard let record = try? record(row), let now = try? row.int64(6) else { continue }
            if users.last?.record.id != record.id {
                let lastOnline = row[5].flatMap { UInt64($0) }
                users.append(UserSnapshot(record: record, streams: StreamState(lastOnline: lastOnline), now: UInt64(now)))
            }
            if row.values.count > 9, let stream = row[7], let started = row[8].flatMap(UInt64.init), let expires = row[9].flatMap(UInt64.init) {
                users[users.count - 1].streams.leases.append(
                    StreamState.Lease(stream: stream, key: Identifier.streamKey(stream), startedAt: started, expiresAt: expires))
            }
        }
        return users
    }
}
