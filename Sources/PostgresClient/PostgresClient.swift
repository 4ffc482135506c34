import Glibc
import Synchronization

/// Connections to one database, one per thread that uses it: the FastCGI request threads are
/// synchronous, so each keeps its own libpq connection and no request waits on another's.
/// Connections close when their thread ends.
public final class PostgresClient: Sendable {
    public let configuration: PostgresConfiguration
    private let availability = PostgresAvailability()
    private let key: pthread_key_t

    public init(configuration: PostgresConfiguration) {
        self.configuration = configuration
        var key = pthread_key_t()
        pthread_key_create(&key) { connection in
            guard let connection else { return }
            Unmanaged<PostgresConnection>.fromOpaque(connection).release()
        }
        self.key = key
    }

    /// Why the last statement or connection attempt failed for want of the database, or nil
    /// when the last one succeeded.
    public var lastFailure: String? { availability.lastFailure }

    /// This thread's connection (opened on first use, again after a failure).
    public func withConnection<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        try body(connection())
    }

    /// One statement outside any explicit transaction (it commits on its own).
    @discardableResult
    public func execute(_ statement: PostgresStatement, _ parameters: [String?] = []) throws(PostgresError) -> PostgresRows {
        try connection().execute(statement, parameters)
    }

    /// Runs `body` in one transaction on this thread's connection: COMMIT when it returns,
    /// ROLLBACK when it throws. `isolation` is e.g. "SERIALIZABLE"; with `retries` > 0 a
    /// serialization failure or deadlock runs the whole body again.
    public func transaction<T>(isolation: String? = nil, retries: Int = 0, _ body: (PostgresConnection) throws -> T) throws -> T {
        let connection = connection()
        var attempt = 0
        while true {
            do {
                connection.begin(isolation: isolation)
                let value = try body(connection)
                try connection.commit()
                return value
            } catch let error as PostgresError where error.kind == .serialization && attempt < retries {
                connection.rollback()
                attempt += 1
            } catch {
                connection.rollback()
                throw error
            }
        }
    }

    private func connection() -> PostgresConnection {
        if let existing = pthread_getspecific(key) {
            return Unmanaged<PostgresConnection>.fromOpaque(existing).takeUnretainedValue()
        }
        let connection = PostgresConnection(configuration: configuration, availability: availability)
        pthread_setspecific(key, Unmanaged.passRetained(connection).toOpaque())
        return connection
    }
}
