import Synchronization

/// What the connections of one client last saw of the database, for health to report
/// without asking the database itself.
final class PostgresAvailability: Sendable {
    private struct State {
        var failure: String?
        var since: ContinuousClock.Instant?
    }

    private let state = Mutex(State())

    func failed(_ reason: String) {
        state.withLock { state in
            if state.failure == nil { state.since = .now }
            state.failure = reason
        }
    }

    func succeeded() {
        state.withLock { state in
            if state.failure != nil { state = State() }
        }
    }

    var lastFailure: String? { state.withLock { $0.failure } }
}
