/// A failure of the database or of one statement, sorted by what the caller can do about it.
public struct PostgresError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The database cannot be reached, refused the connection, was shut down, or did not
        /// answer within the statement timeout. Retrying later may succeed.
        case unavailable
        /// SERIALIZABLE conflict or deadlock: the whole transaction may be run again.
        case serialization
        /// A unique constraint refused the row.
        case uniqueViolation
        /// Anything else: a bug in a statement or data the schema refuses.
        case other
    }

    public var kind: Kind
    /// The five-character SQLSTATE, when the server sent one.
    public var sqlState: String?
    public var message: String

    public init(_ kind: Kind, sqlState: String? = nil, message: String) {
        self.kind = kind
        self.sqlState = sqlState
        self.message = message
    }

    public var description: String {
        "\(kind) (\(sqlState ?? "no sqlstate")): \(message)"
    }

    /// The kind of a server error from its SQLSTATE (PostgreSQL's errcodes.txt).
    public static func kind(ofSQLState state: String) -> Kind {
        switch state {
        case "40001", "40P01": return .serialization
        case "23505": return .uniqueViolation
        // Query canceled (our statement_timeout), shutdowns, too many connections, a read-only
        // standby after a failover: all pass once the database is back or has a primary again.
        case "57014", "57P01", "57P02", "57P03", "53300", "25006": return .unavailable
        default: return state.hasPrefix("08") ? .unavailable : .other
        }
    }
}
