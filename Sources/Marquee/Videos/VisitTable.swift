import LMDBStore

/// The visits the consumer has moved out of the outbox: per video, a count of every visit and
/// the newest `recentKept` visits themselves, newest first. Visits are recorded for catalogued
/// videos only, so the table holds at most `recentKept` × `Visit.maxEncodedBytes` (150 KiB) per
/// video of the catalogue, plus one counter each.
public struct VisitTable: Sendable {
    let store: Store
    /// As many as the visits route answers at most.
    public static let recentKept = 100
    /// Visits beyond the kept ones that one trim removes, so that a table grown before the cap
    /// shrinks a little with each move instead of in one long transaction.
    static let surplusPerTrim = 500

    public init(store: Store) {
        self.store = store
    }

    public func count(of videoId: String) throws -> Int {
        try store.get(VideoKeys.visitCount(videoId)).flatMap { Int(String(decoding: $0, as: UTF8.self)) } ?? 0
    }

    /// Up to `limit` visits of `videoId`, newest first.
    public func visits(of videoId: String, limit: Int) throws -> [Visit] {
        try store.scan(prefix: VideoKeys.visitsPrefix(videoId), limit: limit).compactMap { Visit.decode($0.entry.value) }
    }

    /// Deletes `videoId`'s visits beyond the newest `recentKept`, knowing that the table held
    /// at most that many before `added` more.
    static func trim(_ videoId: String, added: Int, in txn: StoreTransaction) throws {
        let visits = try txn.scan(prefix: VideoKeys.visitsPrefix(videoId), limit: recentKept + added + surplusPerTrim)
        for (key, _) in visits.dropFirst(recentKept) {
            _ = try txn.delete(key)
        }
    }
}
