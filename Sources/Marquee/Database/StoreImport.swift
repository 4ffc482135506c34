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
        report.lines.append(try contentEvents(store: store, database: database, batchSize: batchSize))
        report.lines += try copyVideos(store: store, database: database, batchSize: batchSize)
        return report
    }

    /// The queued and parked content events, with their attempts, times and last errors, so
    /// that the cluster's consumer goes on where this host's left off. The queue's counters
    /// are figures of the host, not records, and stay behind.
    static func contentEvents(store: Store, database: Database, batchSize: Int) throws -> String {
        let source = LMDBContentEventQueue(store: store)
        let target = PostgresContentEventQueue(client: database.client)
        var copied = 0
        var skipped = 0
        for prefix in [TrailerKeys.queuePrefix, TrailerKeys.parkedPrefix] {
            var cursor: String?
            repeat {
                let page = try source.events(prefix, after: cursor, limit: batchSize)
                let new = try target.copy(page)
                copied += new
                skipped += page.count - new
                cursor = page.count < batchSize ? nil : page.last.map { prefix + $0.digest }
            } while cursor != nil
        }
        return "content events: \(copied) copied, \(skipped) skipped (already in the database), queued and parked alike"
    }
}
