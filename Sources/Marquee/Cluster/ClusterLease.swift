import Foundation
import LMDBStore
import PostgresClient

/// A named lease held by one process cluster-wide, as a row of `cluster_leases` in the shared
/// database: the pool-wide roles of one host become roles of the whole cluster. The row's
/// expiry is the database's own clock, so hosts with skewed clocks still agree on it.
///
/// No session state: one statement per claim, so that it works through PgBouncer in
/// transaction mode, and a holder that dies (its host with it) is replaced once the row
/// expires, without anyone noticing the death.
public struct ClusterLease: Sendable {
    public let name: String
    public let ttl: Duration
    public let owner: String
    private let database: PostgresClient

    /// This process, cluster-wide: pid@hostname plus a random part, since hosts in containers
    /// or namespaces may share a hostname and reuse pids.
    public static let processOwner = "\(Lease.processOwner)#\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"

    public init(_ name: String, database: PostgresClient, ttl: Duration, owner: String = ClusterLease.processOwner) {
        self.name = name
        self.database = database
        self.ttl = ttl
        self.owner = owner
    }

    static let claimStatement = PostgresStatement("cluster_lease_claim", """
        INSERT INTO cluster_leases (name, owner, expires_at)
        VALUES ($1, $2, clock_timestamp() + $3::bigint * interval '1 millisecond')
        ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
        WHERE cluster_leases.owner = excluded.owner OR cluster_leases.expires_at <= clock_timestamp()
        RETURNING owner
        """)
    static let releaseStatement = PostgresStatement("cluster_lease_release",
                                                    "DELETE FROM cluster_leases WHERE name = $1 AND owner = $2")
    static let holderStatement = PostgresStatement("cluster_lease_holder",
                                                   "SELECT owner FROM cluster_leases WHERE name = $1 AND expires_at > clock_timestamp()")

    /// Takes or renews the lease: true while this owner holds it. A database that cannot be
    /// reached answers with its error; the caller then holds nothing.
    public func claim() throws(PostgresError) -> Bool {
        let rows = try database.execute(Self.claimStatement, [name, owner, String(ttl.millis)])
        return !rows.isEmpty
    }

    /// Gives the lease back, if this owner holds it, so that another takes it at once.
    public func release() {
        _ = try? database.execute(Self.releaseStatement, [name, owner])
    }

    /// The live holder, if any.
    public func holder() throws(PostgresError) -> String? {
        try database.execute(Self.holderStatement, [name]).first?[0]
    }
}
