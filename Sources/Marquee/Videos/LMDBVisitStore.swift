import LMDBStore

/// The visits in the embedded store (the default, without MARQUEE_DATABASE_URL). Visits are
/// recorded for catalogued videos only, so it holds at most `Visit.recentKept` ×
/// `Visit.maxEncodedBytes` (150 KiB) per video of the catalogue, plus one counter each.
public struct LMDBVisitStore: VisitStore {
    let store: Store
    /// Visits beyond the kept ones that one trim removes, so that a table grown before the cap
    /// shrinks a little with each move instead of in one long transaction.
    static let surplusPerTrim = 500

    public init(store: Store) {
        self.store = store
    }

    public func count(of videoId: String) throws -> Int {
        try store.get(VideoKeys.visitCount(videoId)).flatMap { Int(String(decoding: $0, as: UTF8.self)) } ?? 0
    }

    public func visits(of videoId: String, limit: Int) throws -> [Visit] {
        try store.scan(prefix: VideoKeys.visitsPrefix(videoId), limit: limit).compactMap { Visit.decode($0.entry.value) }
    }

    /// The outbox and the table share the store: one transaction moves a batch.
    public func move(from outbox: VisitOutbox, limit: Int) throws -> VisitOutbox.Moved {
        try outbox.moveBatch(limit: limit)
    }

    /// Deletes `videoId`'s visits beyond the newest `Visit.recentKept`, knowing that the table
    /// held at most that many before `added` more.
    static func trim(_ videoId: String, added: Int, in txn: StoreTransaction) throws {
        let visits = try txn.scan(prefix: VideoKeys.visitsPrefix(videoId), limit: Visit.recentKept + added + surplusPerTrim)
        for (key, _) in visits.dropFirst(Visit.recentKept) {
            _ = try txn.delete(key)
        }
    }

    /// Every video with moved visits, its count and kept visits, `limit` videos after the video
    /// `cursor`, in id order: for `marquee db import-store`.
    func page(after cursor: String?, limit: Int) throws -> [(videoId: String, count: Int, visits: [Visit])] {
        let counts = try store.scan(prefix: VideoKeys.visitCountPrefix, after: cursor.map(VideoKeys.visitCount), limit: limit)
        return try counts.map { entry in
            let videoId = String(entry.key.dropFirst(VideoKeys.visitCountPrefix.count))
            let count = Int(String(decoding: entry.entry.value, as: UTF8.self)) ?? 0
            return (videoId, count, try visits(of: videoId, limit: Visit.recentKept))
        }
    }
}
