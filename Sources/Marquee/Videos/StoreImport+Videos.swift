import LMDBStore

/// `marquee db import-store`, the videos' part: the catalogue, the visits the embedded
/// consumer moved, and the visits still in the outbox.
extension StoreImport {
    /// Report lines for the catalogue, the moved visits and the outbox.
    /// - A video the database holds already is skipped, and so are the moved visits of a video
    ///   the database counts already: a second run copies nothing.
    /// - The outbox is moved, not copied: its visits leave the store as the database takes
    ///   them, exactly as a worker with the database moves them, so that a host switched to
    ///   the database afterwards does not count them again. Under the host's consumer lease,
    ///   so that no embedded worker moves them into its own table meanwhile.
    static func copyVideos(store: Store, database: Database, batchSize: Int) throws -> [String] {
        let catalogue = LMDBVideoCatalogue(store: store)
        let videos = PostgresVideoCatalogue(client: database.client)
        var copied = 0
        var skipped = 0
        var cursor: String?
        while true {
            let page = try catalogue.page(after: cursor, limit: batchSize)
            guard let last = page.last else { break }
            let outcome = try videos.copy(page)
            copied += outcome.copied
            skipped += outcome.skipped
            cursor = last.videoId
        }
        var lines = ["videos: \(copied) copied, \(skipped) skipped (already in the database)"]

        let table = LMDBVisitStore(store: store)
        let visits = PostgresVisitStore(client: database.client)
        var counted = (copied: 0, skipped: 0, visits: 0, kept: 0)
        cursor = nil
        while true {
            let page = try table.page(after: cursor, limit: batchSize)
            guard let last = page.last else { break }
            for video in page {
                if try visits.copy(videoId: video.videoId, count: video.count, visits: video.visits) {
                    counted.copied += 1
                    counted.visits += video.count
                    counted.kept += video.visits.count
                } else {
                    counted.skipped += 1
                }
            }
            cursor = last.videoId
        }
        lines.append("visit counts: \(counted.copied) copied (\(counted.visits) visits, \(counted.kept) kept in full), "
                     + "\(counted.skipped) skipped (already in the database)")
        lines.append(try moveOutbox(store: store, into: visits, batchSize: batchSize))
        return lines
    }

    private static func moveOutbox(store: Store, into visits: PostgresVisitStore, batchSize: Int) throws -> String {
        let outbox = VisitOutbox(store: store)
        var moved = VisitOutbox.Moved(moved: 0, alreadyStored: 0, rejected: 0)
        while true {
            // Taken again before each batch: it runs out after VisitConsumer.leaseTime.
            guard try store.acquireLease(VideoKeys.consumerLease, ttl: VisitConsumer.leaseTime) else {
                let owner = (try? store.lease(VideoKeys.consumerLease))?.owner ?? "another process"
                return "outbox visits: \(moved.moved) copied, \(moved.alreadyStored) skipped (already in the database); "
                    + "the rest left: \(owner) moves the outbox (stop the workers, or let them move it with the database)"
            }
            let batch = try visits.move(from: outbox, limit: batchSize)
            moved.moved += batch.moved
            moved.alreadyStored += batch.alreadyStored
            moved.rejected += batch.rejected
            if batch.total == 0 { break }
        }
        _ = try? store.releaseLease(VideoKeys.consumerLease)
        return "outbox visits: \(moved.moved) copied, \(moved.alreadyStored) skipped (already in the database), "
            + "\(moved.rejected) set aside (undecodable)"
    }
}
