import LMDBStore
import NIOConcurrencyHelpers
import Synchronization

/// User accounts and the concurrent-stream limit: `/api/v1/users…` (admin token) and the
/// earlier service's drop-in routes (no token; nginx keeps them internal). The limit holds
/// across every worker, and every host sharing a database, because each check-and-grant is one
/// transaction (an LMDB write, or a PostgreSQL row lock).
public struct UsersFeature: Feature {
    public let name = "users"
    let context: UsersContext

    public init(services: Services) throws(SettingsError) {
        context = UsersContext(services: services, settings: try StreamSettings(services.settings.reader))
    }

    /// Parses the MARQUEE_STREAM_* settings, for `marquee config check`.
    public static func validate(_ reader: SettingsReader) throws(SettingsError) {
        _ = try StreamSettings(reader)
    }

    public func register(in router: inout Router) {
        UserRoutes(context: context).register(in: &router)
        // No token of their own: the caller's address is the whole of their protection.
        router.group(admitting: CallerRule.legacyUsers.admission(context.services)) { router in
            LegacyUserRoutes(context: context).register(in: &router)
        }
    }

    public func prepareReload(_ reader: SettingsReader) throws(SettingsError) -> @Sendable () -> Void {
        let settings = try StreamSettings(reader)
        let context = self.context
        return { context.replace(settings) }
    }

    /// `users` is pool-wide (from the store); the other counters are this worker's since it started.
    public func status() -> JSONValue {
        let settings = context.settings
        let counters = context.counters
        var section: [String: JSONValue] = [
            "created": .int(counters.created.load(ordering: .relaxed)),
            "deleted": .int(counters.deleted.load(ordering: .relaxed)),
            "grants": .int(counters.grants.load(ordering: .relaxed)),
            "renewals": .int(counters.renewals.load(ordering: .relaxed)),
            "refusals": .int(counters.refusals.load(ordering: .relaxed)),
            "releases": .int(counters.releases.load(ordering: .relaxed)),
            "streamLimit": .int(settings.defaultLimit),
            "planLimits": .object(settings.planLimits.mapValues { .int($0) }),
            "leaseSeconds": .double(Double(settings.lease.components.seconds) + Double(settings.lease.components.attoseconds) / 1e18),
        ]
        if let users = try? context.users.count() { section["users"] = .int(users) }
        return .object(section)
    }
}

/// What the user routes share inside one worker: the store, the live stream settings and
/// the counters.
final class UsersContext: Sendable {
    let services: Services
    let users: any UserStore
    let counters = UsersCounters()
    private let current: NIOLockedValueBox<StreamSettings>

    init(services: Services, settings: StreamSettings) {
        self.services = services
        self.users = Self.store(services.store, database: services.database)
        self.current = NIOLockedValueBox(settings)
    }

    /// PostgreSQL when the operator configured one, else the embedded store.
    static func store(_ store: Store, database: Database?) -> any UserStore {
        database.map { PostgresUserStore(client: $0.client) } ?? LMDBUserStore(store: store)
    }

    var settings: StreamSettings { current.withLockedValue { $0 } }

    func replace(_ settings: StreamSettings) {
        current.withLockedValue { $0 = settings }
    }
}

final class UsersCounters: Sendable {
    let created = Atomic<Int>(0)
    let deleted = Atomic<Int>(0)
    let grants = Atomic<Int>(0)
    let renewals = Atomic<Int>(0)
    let refusals = Atomic<Int>(0)
    let releases = Atomic<Int>(0)

    func count(_ outcome: StreamState.GrantOutcome) {
        switch outcome {
        case .granted: grants.add(1, ordering: .relaxed)
        case .renewed: renewals.add(1, ordering: .relaxed)
        case .refused: refusals.add(1, ordering: .relaxed)
        }
    }
}
