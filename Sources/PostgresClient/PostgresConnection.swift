import CLibPQ
import Glibc

/// One libpq connection, used by one thread at a time (the thread that owns its slot in
/// `PostgresClient`). Reconnects on the next use after a failure, no sooner than the backoff
/// allows; statements are prepared again on each new connection.
public final class PostgresConnection {
    let configuration: PostgresConfiguration
    private let availability: PostgresAvailability
    private var handle: OpaquePointer?
    private var prepared: Set<String> = []
    private var backoff: Duration = .zero
    private var retryAt: ContinuousClock.Instant?
    private(set) var inTransaction = false
    /// BEGIN not sent yet: it goes out with the transaction's first statement, in one round trip.
    private var pendingBegin: String?
    /// Statements whose results nobody reads, sent with the COMMIT in one round trip.
    private var deferred: [(PostgresStatement, [String?])] = []

    init(configuration: PostgresConfiguration, availability: PostgresAvailability) {
        self.configuration = configuration
        self.availability = availability
    }

    deinit {
        if let handle { PQfinish(handle) }
    }

    // MARK: Statements

    /// Runs a prepared statement, preparing it first on this connection if needed.
    @discardableResult
    public func execute(_ statement: PostgresStatement, _ parameters: [String?] = []) throws(PostgresError) -> PostgresRows {
        let steps = pendingSteps() + [.prepared(statement, parameters)]
        do {
            return try pipeline(steps)
        } catch let error where error.sqlState == "26000" {
            // A pooler in front lost the statement with its server connection: prepare again,
            // once, where no transaction was aborted by the failure.
            prepared.remove(statement.name)
            guard !inTransaction else { throw error }
            return try execute(statement, parameters)
        }
    }

    /// Runs the statements in one round trip, in order, and returns each one's rows. Each one
    /// starts when the one before it has finished: under READ COMMITTED a read placed after a
    /// `FOR UPDATE` sees what the lock's previous holder committed.
    @discardableResult
    public func execute(_ statements: [(PostgresStatement, [String?])]) throws(PostgresError) -> [PostgresRows] {
        let results = try pipelineResults(pendingSteps() + statements.map { .prepared($0.0, $0.1) })
        return Array(results.suffix(statements.count))
    }

    /// Queues a statement of the current transaction whose result is not needed: it is sent
    /// with the COMMIT, and its failure fails the commit.
    public func executeAtCommit(_ statement: PostgresStatement, _ parameters: [String?] = []) {
        deferred.append((statement, parameters))
    }

    /// Runs SQL through the simple protocol: several statements at once, no parameters.
    /// For transaction control and migrations; requests use `execute`.
    @discardableResult
    public func run(_ sql: String) throws(PostgresError) -> PostgresRows {
        let pending = pendingSteps()
        if !pending.isEmpty { try pipeline(pending) }
        let connection = try connected(outsideTransaction: !inTransaction)
        return try send(connection) { PQsendQuery($0, sql) }
    }

    // MARK: Transactions

    func begin(isolation: String?) {
        pendingBegin = isolation.map { "BEGIN ISOLATION LEVEL \($0)" } ?? "BEGIN"
        deferred = []
        inTransaction = true
    }

    func commit() throws(PostgresError) {
        defer { inTransaction = false }
        if pendingBegin != nil && deferred.isEmpty {
            // Nothing was sent: there is nothing to commit.
            pendingBegin = nil
            return
        }
        try pipeline(pendingSteps() + [.simple("COMMIT")])
    }

    /// The BEGIN and deferred statements not sent yet, which the next round trip carries first.
    private func pendingSteps() -> [Step] {
        var steps: [Step] = []
        if let begin = pendingBegin { steps.append(.simple(begin)) }
        steps += deferred.map { .prepared($0.0, $0.1) }
        pendingBegin = nil
        deferred = []
        return steps
    }

    /// Rolls back after a failure inside a transaction. A connection that fails even this is
    /// dropped, so that no half-done transaction is ever carried into the next request.
    func rollback() {
        guard inTransaction else { return }
        inTransaction = false
        deferred = []
        if pendingBegin != nil {
            pendingBegin = nil
            return
        }
        guard let handle else { return }
        do { try run("ROLLBACK") } catch { drop(handle) }
    }

    // MARK: Pipeline

    private enum Step {
        case simple(String)
        case prepared(PostgresStatement, [String?])
    }

    /// Sends every step at once (libpq's pipeline mode), preparing statements this connection
    /// has not prepared yet, and reads every result: one round trip. Returns the last step's
    /// rows; the first error, if any, is thrown (the steps after it were not run).
    @discardableResult
    private func pipeline(_ steps: [Step]) throws(PostgresError) -> PostgresRows {
        try pipelineResults(steps).last ?? PostgresRows(columns: [], rows: [], affected: 0)
    }

    /// The rows of every step, in order.
    private func pipelineResults(_ steps: [Step]) throws(PostgresError) -> [PostgresRows] {
        let opensTransaction = if case .simple(let sql)? = steps.first { sql.hasPrefix("BEGIN") } else { false }
        let connection = try connected(outsideTransaction: !inTransaction || opensTransaction)
        guard PQenterPipelineMode(connection) == 1 else { throw lost(connection) }
        var expected: [String?] = []  // per result: the statement it prepares, or nil
        for step in steps {
            let sent: Int32
            switch step {
            case .simple(let sql):
                sent = PQsendQueryParams(connection, sql, 0, nil, nil, nil, nil, 0)
            case .prepared(let statement, let parameters):
                if !prepared.contains(statement.name) && !expected.contains(statement.name) {
                    guard PQsendPrepare(connection, statement.name, statement.sql, 0, nil) == 1 else { throw lost(connection) }
                    expected.append(statement.name)
                }
                sent = withCStrings(parameters) { values in
                    PQsendQueryPrepared(connection, statement.name, Int32(parameters.count), values, nil, nil, 0)
                }
            }
            guard sent == 1 else { throw lost(connection) }
            expected.append(nil)
        }
        guard PQpipelineSync(connection) == 1 else { throw lost(connection) }
        let deadline = ContinuousClock.now + configuration.statementTimeout + .seconds(1)
        var failure: PostgresError?
        var results: [PostgresRows] = []
        for preparing in expected {
            guard let result = try nextResult(connection, deadline: deadline) else { throw lost(connection) }
            let status = PQresultStatus(result)
            if status != PGRES_PIPELINE_ABORTED {
                switch Self.rows(of: result, connection: connection) {
                case .success(let rows):
                    if let preparing { prepared.insert(preparing) } else { results.append(rows) }
                case .failure(let error):
                    if failure == nil { failure = error }
                }
            }
            PQclear(result)
            // Each query's results end with a NULL.
            if let extra = try nextResult(connection, deadline: deadline) { PQclear(extra) }
        }
        guard let sync = try nextResult(connection, deadline: deadline) else { throw lost(connection) }
        let synced = PQresultStatus(sync) == PGRES_PIPELINE_SYNC
        PQclear(sync)
        guard synced, PQexitPipelineMode(connection) == 1 else { throw lost(connection) }
        if let failure { _ = try settle(.failure(failure)) }
        _ = try settle(.success(PostgresRows(columns: [], rows: [], affected: 0)))
        return results
    }

    /// The next result, waiting no later than `deadline`.
    private func nextResult(_ connection: OpaquePointer, deadline: ContinuousClock.Instant) throws(PostgresError) -> OpaquePointer? {
        while PQisBusy(connection) == 1 {
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else {
                let error = PostgresError(.unavailable, message: "the database did not answer within \(configuration.statementTimeout)")
                drop(connection)
                availability.failed(error.message)
                throw error
            }
            var descriptor = pollfd(fd: PQsocket(connection), events: Int16(POLLIN), revents: 0)
            let milliseconds = remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000 + 1
            _ = poll(&descriptor, 1, Int32(min(milliseconds, Int64(Int32.max))))
            guard PQconsumeInput(connection) == 1 else { throw lost(connection) }
        }
        return PQgetResult(connection)
    }

    /// Records what the outcome says of the database and returns or throws it.
    private func settle(_ outcome: Result<PostgresRows, PostgresError>?) throws(PostgresError) -> PostgresRows {
        switch outcome {
        case .success(let rows)?:
            availability.succeeded()
            return rows
        case .failure(let error)?:
            if error.kind == .unavailable {
                availability.failed(error.message)
            } else {
                availability.succeeded()
            }
            throw error
        case nil:
            return PostgresRows(columns: [], rows: [], affected: 0)
        }
    }

    // MARK: Connection

    /// `outsideTransaction`: nothing of a transaction was sent on the connection yet, so a new
    /// one may take its place.
    private func connected(outsideTransaction: Bool) throws(PostgresError) -> OpaquePointer {
        if let handle {
            if PQstatus(handle) == CONNECTION_OK && !(outsideTransaction && Self.closedByServer(handle)) { return handle }
            // Mid-transaction, a new connection would run the rest outside it.
            guard outsideTransaction else { throw lost(handle) }
            // The transaction begun, if any, has sent nothing yet: it goes out on the new connection.
            let transaction = inTransaction
            drop(handle)
            inTransaction = transaction
        }
        // The backoff spares a database that is down; once another connection of this client
        // (or the probe) reached it again, waiting out the rest would only refuse requests.
        if let retryAt, ContinuousClock.now < retryAt, let failure = availability.lastFailure {
            throw PostgresError(.unavailable, message: failure)
        }
        let parameters = try configuration.connectionParameters()
        let connection = withCStrings(parameters.map(\.0)) { keywords in
            withCStrings(parameters.map(\.1)) { values in
                PQconnectdbParams(keywords, values, 1)
            }
        }
        guard let connection, PQstatus(connection) == CONNECTION_OK else {
            let message = connection.map { Self.message(of: $0) } ?? "out of memory"
            if let connection { PQfinish(connection) }
            backoff = backoff == .zero ? configuration.minBackoff : min(backoff * 2, configuration.maxBackoff)
            retryAt = ContinuousClock.now + backoff
            let error = PostgresError(.unavailable, message: "cannot connect to \(configuration.redactedURL): \(message)")
            availability.failed(error.message)
            throw error
        }
        // libpq prints NOTICEs (a migration's "already exists, skipping") to stderr by default.
        PQsetNoticeProcessor(connection, { _, _ in }, nil)
        backoff = .zero
        retryAt = nil
        prepared = []
        handle = connection
        return connection
    }

    /// Whether the server closed this idle connection (a restart, a terminated backend, an idle
    /// timeout), read without waiting. libpq learns it only when a statement fails, and each
    /// request thread's first statement after a database restart answered 503.
    private static func closedByServer(_ connection: OpaquePointer) -> Bool {
        let fd = PQsocket(connection)
        guard fd >= 0 else { return true }
        var byte: UInt8 = 0
        for _ in 0..<2 {
            let peeked = recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
            if peeked == 0 { return true }
            if peeked < 0 { return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR }
            // A message while idle: the server's farewell before it closes, or a notice.
            guard PQconsumeInput(connection) == 1, PQstatus(connection) == CONNECTION_OK else { return true }
        }
        return false
    }

    private func drop(_ connection: OpaquePointer) {
        PQfinish(connection)
        if handle == connection { handle = nil }
        prepared = []
        inTransaction = false
    }

    /// Drops the connection after a send or read failed, and says why.
    private func lost(_ connection: OpaquePointer) -> PostgresError {
        let error = PostgresError(.unavailable, message: "lost the database connection: \(Self.message(of: connection))")
        drop(connection)
        retryAt = ContinuousClock.now + configuration.minBackoff
        availability.failed(error.message)
        return error
    }

    private func send(_ connection: OpaquePointer, _ start: (OpaquePointer) -> Int32) throws(PostgresError) -> PostgresRows {
        guard start(connection) == 1 else { throw lost(connection) }
        return try results(of: connection)
    }

    /// Waits for every result of the query sent, no longer than the statement timeout and a
    /// second: the server's own timeout normally fires first, this one covers a server that
    /// stopped answering altogether.
    private func results(of connection: OpaquePointer) throws(PostgresError) -> PostgresRows {
        let deadline = ContinuousClock.now + configuration.statementTimeout + .seconds(1)
        var outcome: Result<PostgresRows, PostgresError>?
        while let result = try nextResult(connection, deadline: deadline) {
            defer { PQclear(result) }
            // The first error wins; a multi-statement run keeps its last result.
            if case .failure = outcome { continue }
            outcome = Self.rows(of: result, connection: connection)
        }
        if PQstatus(connection) != CONNECTION_OK { throw lost(connection) }
        return try settle(outcome)
    }

    private static func rows(of result: OpaquePointer, connection: OpaquePointer) -> Result<PostgresRows, PostgresError> {
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
            let columnCount = PQnfields(result)
            let rowCount = PQntuples(result)
            let columns = (0..<columnCount).map { String(cString: PQfname(result, $0)) }
            var rows: [PostgresRow] = []
            rows.reserveCapacity(Int(rowCount))
            for row in 0..<rowCount {
                rows.append(PostgresRow(values: (0..<columnCount).map { column in
                    PQgetisnull(result, row, column) == 1 ? nil : String(cString: PQgetvalue(result, row, column))
                }))
            }
            let affected = Int(String(cString: PQcmdTuples(result))) ?? Int(rowCount)
            return .success(PostgresRows(columns: columns, rows: rows, affected: affected))
        default:
            let state = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
            let text = PQresultErrorMessage(result).map { String(cString: $0) } ?? ""
            let message = text.isEmpty ? message(of: connection) : text.trimmingSuffixNewlines
            let kind = state.map(PostgresError.kind(ofSQLState:)) ?? (PQstatus(connection) == CONNECTION_OK ? .other : .unavailable)
            return .failure(PostgresError(kind, sqlState: state, message: message))
        }
    }

    private static func message(of connection: OpaquePointer) -> String {
        PQerrorMessage(connection).map { String(cString: $0).trimmingSuffixNewlines } ?? "unknown error"
    }
}

/// Calls `body` with a NULL-terminated C array of the strings (nil → NULL).
private func withCStrings<R>(_ strings: [String?], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    let duplicates: [UnsafeMutablePointer<CChar>?] = strings.map { $0.flatMap { strdup($0) } }
    defer { duplicates.forEach { free($0) } }
    let pointers = duplicates.map { UnsafePointer($0) } + [nil]
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}

private func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    withCStrings(strings.map { Optional($0) }, body)
}
