import PostgresClient

/// The visits in PostgreSQL (tables `video_visits`, `video_visit_counts` and
/// `video_visit_movers`, Database/Migrations/0004), where the counts of every host add up.
/// A host's mover claims a batch of its outbox under a number, commits it here with that
/// number, then releases it from the outbox: a batch sent again after a crash between the two
/// adds nothing, although the trim may have deleted its visits already.
struct PostgresVisitStore: VisitStore {
    let client: PostgresClient

    enum Statement {
        /// A row back: the batch is new for this mover. None: it is already in.
        static let claim = PostgresStatement("visits_claim", """
            INSERT INTO video_visit_movers (mover_id, batch) VALUES ($1, $2)
            ON CONFLICT (mover_id) DO UPDATE SET batch = EXCLUDED.batch WHERE video_visit_movers.batch < EXCLUDED.batch
            RETURNING batch
            """)
        static let insert = PostgresStatement("visits_insert", """
            INSERT INTO video_visits (visit_id, video_id, at, ip, user_agent) VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (visit_id) DO NOTHING RETURNING visit_id
            """)
        static let add = PostgresStatement("visits_add", """
            INSERT INTO video_visit_counts (video_id, count) VALUES ($1, $2)
            ON CONFLICT (video_id) DO UPDATE SET count = video_visit_counts.count + EXCLUDED.count
            """)
        static let trim = PostgresStatement("visits_trim", """
            DELETE FROM video_visits WHERE visit_id IN (
                SELECT visit_id FROM video_visits WHERE video_id = $1 ORDER BY at DESC, visit_id OFFSET $2)
            """)
        static let count = PostgresStatement("visits_count", "SELECT count FROM video_visit_counts WHERE video_id = $1")
        static let recent = PostgresStatement("visits_recent", """
            SELECT visit_id, video_id, ip, at, user_agent FROM video_visits WHERE video_id = $1
            ORDER BY at DESC, visit_id LIMIT $2
            """)
        /// For `marquee db import-store`: a video's count, unless the database counts it already.
        static let copyCount = PostgresStatement("visits_copy_count", """
            INSERT INTO video_visit_counts (video_id, count) VALUES ($1, $2) ON CONFLICT (video_id) DO NOTHING RETURNING video_id
            """)
    }

    func count(of videoId: String) throws -> Int {
        try client.execute(Statement.count, [videoId]).first?.int(0) ?? 0
    }

    func visits(of videoId: String, limit: Int) throws -> [Visit] {
        try client.execute(Statement.recent, [videoId, String(limit)]).rows.map { row in
            Visit(visitId: try row.string(0), videoId: try row.string(1), ip: try row.string(2), at: UInt64(try row.int64(3)),
                  userAgent: try row.string(4))
        }
    }

    func move(from outbox: VisitOutbox, limit: Int) throws -> VisitOutbox.Moved {
        guard let claim = try outbox.claim(limit: limit) else { return VisitOutbox.Moved(moved: 0, alreadyStored: 0, rejected: 0) }
        let visits = claim.entries.compactMap { Visit.decode($0.value) }
        let added = try client.transaction(retries: 2) { connection in
            guard try !connection.execute(Statement.claim, [claim.mover, String(claim.number)]).isEmpty else { return 0 }
            return try Self.insert(visits, on: connection)
        }
        return try outbox.release(claim, added: added)
    }

    /// Inserts the visits not stored yet, adds them to their videos' counts and trims those
    /// videos to their newest visits; answers how many were new. One round trip for the
    /// inserts, one for the counts and trims. Counts are taken in video order, so that two
    /// hosts' movers never wait for each other in a cycle; a video's count row, locked first,
    /// also keeps two trims of it apart.
    static func insert(_ visits: [Visit], on connection: PostgresConnection) throws -> Int {
        guard !visits.isEmpty else { return 0 }
        let inserted = try connection.execute(visits.map { visit in
            (Statement.insert, [visit.visitId, visit.videoId, String(visit.at), visit.ip, visit.userAgent])
        })
        var added: [String: Int] = [:]
        for (visit, rows) in zip(visits, inserted) where !rows.isEmpty {
            added[visit.videoId, default: 0] += 1
        }
        let videos = added.keys.sorted()
        guard !videos.isEmpty else { return 0 }
        try connection.execute(videos.map { (Statement.add, [$0, String(added[$0] ?? 0)]) }
                               + videos.map { (Statement.trim, [$0, String(Visit.recentKept)]) })
        return added.values.reduce(0, +)
    }

    /// Copies one video's visits as another store holds them (its count and kept visits),
    /// unless the database counts that video already; answers whether it copied.
    func copy(videoId: String, count: Int, visits: [Visit]) throws -> Bool {
        try client.transaction { connection in
            guard try !connection.execute(Statement.copyCount, [videoId, String(count)]).isEmpty else { return false }
            if !visits.isEmpty {
                try connection.execute(visits.map { visit in
                    (Statement.insert, [visit.visitId, visit.videoId, String(visit.at), visit.ip, visit.userAgent])
                })
            }
            return true
        }
    }
}
