import PostgresClient

/// The catalogue in PostgreSQL (table `videos`, Database/Migrations/0004), the body kept as
/// the exact JSON text `GET /video/{videoId}` answers.
struct PostgresVideoCatalogue: VideoCatalogue {
    let client: PostgresClient

    enum Statement {
        static let read = PostgresStatement("videos_read", "SELECT body FROM videos WHERE video_id = $1")
        static let insert = PostgresStatement("videos_insert", """
            INSERT INTO videos (video_id, body) VALUES ($1, $2) ON CONFLICT (video_id) DO NOTHING RETURNING video_id
            """)
        static let lock = PostgresStatement("videos_lock", "SELECT body FROM videos WHERE video_id = $1 FOR UPDATE")
        static let replace = PostgresStatement("videos_replace", "UPDATE videos SET body = $2, updated_at = now() WHERE video_id = $1")
    }

    func stored(_ videoId: String) throws -> [UInt8]? {
        try client.execute(Statement.read, [videoId]).first.map { Array(try $0.string(0).utf8) }
    }

    /// Inserts first, so that of two hosts creating one video exactly one answers "new"; an
    /// existing video is locked before its `_id` is read, so that a concurrent replace of it
    /// cannot slip between the read and the write.
    @discardableResult
    func save(_ videos: [Video]) throws -> Int {
        try client.transaction(retries: 2) { connection in
            var created = 0
            for var video in videos {
                let given = video.legacyId
                if given == nil { video.legacyId = Video.generatedLegacyId(for: video.videoId) }
                if try !connection.execute(Statement.insert, [video.videoId, Self.text(video)]).isEmpty {
                    created += 1
                    continue
                }
                guard let row = try connection.execute(Statement.lock, [video.videoId]).first else {
                    // No delete exists; should one come, the whole save runs again.
                    throw PostgresError(.serialization, message: "video \(video.videoId) deleted while being saved")
                }
                if given == nil { video.legacyId = Self.legacyId(keeping: Array(try row.string(0).utf8), for: video) }
                try connection.execute(Statement.replace, [video.videoId, Self.text(video)])
            }
            return created
        }
    }

    /// Copies stored answers as another catalogue holds them; a video already present is
    /// skipped and left as it is.
    func copy(_ videos: [(videoId: String, json: [UInt8])]) throws -> (copied: Int, skipped: Int) {
        try client.transaction { connection in
            var copied = 0
            for video in videos {
                let inserted = try connection.execute(Statement.insert, [video.videoId, String(decoding: video.json, as: UTF8.self)])
                if !inserted.isEmpty { copied += 1 }
            }
            return (copied, videos.count - copied)
        }
    }

    private static func text(_ video: Video) -> String {
        String(decoding: video.json(), as: UTF8.self)
    }
}
