import LMDBStore

/// The visits the consumer has moved out of the outbox, per video, newest first.
public struct VisitTable: Sendable {
    let store: Store

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
}
