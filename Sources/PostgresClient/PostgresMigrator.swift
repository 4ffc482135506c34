/// One step of a schema: applied once, in version order, and recorded in `schema_migrations`.
public struct PostgresMigration: Sendable {
    public let version: Int
    public let name: String
    public let sql: String

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }
}

/// Applies migrations under a transaction-scoped advisory lock, so that any number of
/// processes may start at once: the first applies what is pending, the others wait for it and
/// then find nothing left to do. The lock and each step live in one transaction, so a process
/// killed halfway applies nothing, and no session state outlives the transaction.
public struct PostgresMigrator: Sendable {
    public let client: PostgresClient
    public let migrations: [PostgresMigration]
    public let lockKey: Int64

    public init(client: PostgresClient, migrations: [PostgresMigration], lockKey: Int64) {
        self.client = client
        self.migrations = migrations.sorted { $0.version < $1.version }
        self.lockKey = lockKey
    }

    /// The newest version this program knows.
    public var latestVersion: Int { migrations.last?.version ?? 0 }

    /// The version recorded in the database; 0 when no migration was ever applied.
    public func currentVersion() throws -> Int {
        try client.withConnection { connection in
            guard try connection.run("SELECT to_regclass('schema_migrations') IS NOT NULL").first?.bool(0) == true else { return 0 }
            return try connection.run("SELECT coalesce(max(version), 0) FROM schema_migrations").first?.int(0) ?? 0
        }
    }

    /// Applies every pending migration and returns those this call applied.
    @discardableResult
    public func migrate() throws -> [PostgresMigration] {
        try client.transaction { connection in
            try connection.run("""
                SELECT pg_advisory_xact_lock(\(lockKey));
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version integer PRIMARY KEY,
                    name text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """)
            let current = try connection.run("SELECT coalesce(max(version), 0) FROM schema_migrations").first?.int(0) ?? 0
            let pending = migrations.filter { $0.version > current }
            for migration in pending {
                try connection.run(migration.sql)
                try connection.run("INSERT INTO schema_migrations (version, name) VALUES (\(migration.version), '\(migration.name.replacing("'", with: "''"))')")
            }
            return pending
        }
    }
}
