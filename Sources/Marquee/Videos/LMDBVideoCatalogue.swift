import LMDBStore

/// The catalogue in the embedded store (the default, without MARQUEE_DATABASE_URL), under
/// `videos/catalogue/<videoId>` (see `VideoKeys`).
public struct LMDBVideoCatalogue: VideoCatalogue {
    let store: Store

    public init(store: Store) {
        self.store = store
    }

    public func stored(_ videoId: String) throws -> [UInt8]? {
        try store.get(VideoKeys.catalogue(videoId))
    }

    @discardableResult
    public func save(_ videos: [Video]) throws -> Int {
        try store.write(.state, durable: true) { txn in
            var created = 0
            for var video in videos {
                let key = VideoKeys.catalogue(video.videoId)
                let stored = try txn.get(key)
                if stored == nil { created += 1 }
                if video.legacyId == nil { video.legacyId = Self.legacyId(keeping: stored, for: video) }
                try txn.put(key, video.json())
            }
            return created
        }
    }

    /// Up to `limit` stored answers after the video `cursor`, in id order, each as
    /// `json(of:)` answers it: for `marquee db import-store`.
    func page(after cursor: String?, limit: Int) throws -> [(videoId: String, json: [UInt8])] {
        try store.scan(prefix: VideoKeys.cataloguePrefix, after: cursor.map(VideoKeys.catalogue), limit: limit).compactMap { entry in
            let videoId = String(entry.key.dropFirst(VideoKeys.cataloguePrefix.count))
            return try json(of: videoId).map { (videoId, $0) }
        }
    }
}
