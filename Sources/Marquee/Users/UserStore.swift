/// Where accounts and their streams are kept: the embedded store (`LMDBUserStore`, the
/// default) or PostgreSQL (`PostgresUserStore`, with MARQUEE_DATABASE_URL). Both make each
/// check-and-grant atomic, so the stream limit is exact whatever process or host asks.
protocol UserStore: Sendable {
    /// Creates each user that is not there yet and grants it `streams` in the same
    /// transaction, each with a normal lease of `settings`: a player that keeps renewing keeps
    /// its slot, one that is gone frees it when the lease runs out. A 201 is durable.
    func importAll(_ users: [(user: NewUser, streams: [String])], settings: StreamSettings, batchSize: Int) throws -> [ImportedUser]
    /// Deletes the user and its streams.
    func delete(_ id: String) throws -> UserRecord?
    func user(_ id: String) throws -> UserSnapshot?
    /// Up to `limit` users created after the one with sequence `cursor`, oldest first, and the
    /// cursor of the next page (nil on the last).
    func page(after cursor: Int64?, limit: Int) throws -> (users: [UserSnapshot], nextCursor: Int64?)
    func count() throws -> Int
    /// The limit check and the grant as one atomic step.
    func grant(_ stream: String, to id: String, settings: StreamSettings) throws -> StreamGrantResult
    func renew(_ stream: String, of id: String, lease: Duration) throws -> StreamLeaseResult<StreamState.Lease>
    func release(_ stream: String, of id: String) throws -> StreamLeaseResult<Void>
}

extension UserStore {
    /// Creates the user unless the id is taken.
    func create(_ user: NewUser) throws -> UserCreateOutcome {
        try createAll([user])[0]
    }

    func createAll(_ users: [NewUser], batchSize: Int = 500) throws -> [UserCreateOutcome] {
        try importAll(users.map { (user: $0, streams: []) }, settings: StreamSettings(), batchSize: batchSize).map(\.outcome)
    }

    func importAll(_ users: [(user: NewUser, streams: [String])], settings: StreamSettings) throws -> [ImportedUser] {
        try importAll(users, settings: settings, batchSize: 500)
    }
}

/// A user with the stream state read in the same snapshot, and that snapshot's time.
struct UserSnapshot: Sendable {
    var record: UserRecord
    var streams: StreamState
    var now: UInt64

    var liveLeases: [StreamState.Lease] { streams.live(at: now) }
}

enum UserCreateOutcome: Sendable, Equatable {
    case created(UserRecord)
    case exists(UserRecord)
}

/// What `importAll` did with one user: its outcome and, for a created user, the streams
/// granted and those refused by its plan's limit.
struct ImportedUser: Sendable {
    var outcome: UserCreateOutcome
    var granted: [String] = []
    var refused: [String] = []
}

enum StreamGrantResult: Sendable {
    case unknownUser
    case decided(StreamState.GrantOutcome, limit: Int)
}

enum StreamLeaseResult<Done: Sendable>: Sendable {
    case unknownUser
    case notActive
    case done(Done)
}
