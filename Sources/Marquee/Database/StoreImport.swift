import LMDBStore

/// `marquee db import-store`: copies the durable records of an embedded store into PostgreSQL.
/// Records whose id the database already holds are skipped, so running it again copies nothing.
public enum StoreImport {
    public struct Report: Sendable {
        public var lines: [String] = []
    }

    public static func run(store: Store, database: Database, batchSize: Int = 500) throws -> Report {
        var report = Report()
        let source = LMDBUserStore(store: store)
        let target = PostgresUserStore(client: database.client)
        var cursor: Int64?
        var copied = 0
        var skipped = 0
        repeat {
            let page = try source.page(after: cursor, limit: batchSize)
            let outcome = try target.copy(page.users)
            copied += outcome.copied
            skipped += outcome.skipped
            cursor = page.nextCursor
        } while cursor != nil
        report.lines.append("users: \(copied) copied, \(skipped) skipped (already in the database), streams copied with their users")
        report.lines += try copyVideos(store: store, database: database, batchSize: batchSize)
        return report
    }
}
