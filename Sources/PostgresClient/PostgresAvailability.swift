import NIOConcurrencyHelpers

/// What the connections of one client last saw of the database, for health to report
/// without asking the database itself.
final class PostgresAvailability: Sendable {
    private struct State {
        var failure: String?
        var since: ContinuousClock.Instant?
    }

    private let state = NIOLockedValueBox(State())

    func failed(_ reason: String) {
        state.withLockedValue { state in
            if state.failure == nil { state.since = .now }
            state.failure = reason
        }
    }

    func succeeded() {
        state.withLockedValue { state in
            if state.failure != nil { state = State() }
        }
    }

    var lastFailure: String? { state.withLockedValue { $0.failure } }
}
