/// Where the visits moved out of a host's outbox are kept: per video, a count of every visit
/// and the newest `Visit.recentKept` visits themselves, newest first. In the embedded store
/// (`LMDBVisitStore`, the default) or in PostgreSQL (`PostgresVisitStore`), where the counts
/// of every host add up. Either way a read appends to the host's own `VisitOutbox` first.
public protocol VisitStore: Sendable {
    func count(of videoId: String) throws -> Int
    /// Up to `limit` visits of `videoId`, newest first.
    func visits(of videoId: String, limit: Int) throws -> [Visit]
    /// Moves up to `limit` of the outbox's oldest visits here. Each counts once however often
    /// it is moved, and leaves the outbox only once this store holds it.
    func move(from outbox: VisitOutbox, limit: Int) throws -> VisitOutbox.Moved
}
