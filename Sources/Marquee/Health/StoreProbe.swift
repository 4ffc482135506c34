import Foundation
import LMDBStore
import NIOConcurrencyHelpers

/// Proves that the store still commits, not only that it reads: a pool whose write lock was
/// never released read fine and said ok while every write hung. A background thread writes
/// one small key every second; a write that has not returned within the bound, or that
/// failed, is what health and the watchdog report.
final class StoreProbe: Sendable {
    static let key = "health/write-probe"

    private struct State {
        var writingSince: ContinuousClock.Instant?
        var failure: String?
    }

    private let store: Store
    private let state = NIOLockedValueBox(State())

    init(store: Store) {
        self.store = store
    }

    /// One probe write; blocks as long as the store's write lock does.
    func round() {
        state.withLockedValue { $0.writingSince = .now }
        var failure: String?
        do {
            try store.put(Self.key, Array("\(getpid()) \(StoreClock.nowMillis())".utf8), as: .state)
        } catch let error as StoreError where error.isFull {
            // The write lock was taken and answered: the store makes progress. A full map is
            // health's "degraded" store reason, not a stalled store.
        } catch {
            failure = "\(error)"
        }
        state.withLockedValue { $0 = State(writingSince: nil, failure: failure) }
    }

    /// Why the store makes no progress: a write pending for longer than `bound`, or the last
    /// write failed. nil while commits go through.
    func problem(bound: Duration) -> String? {
        let current = state.withLockedValue { $0 }
        if let since = current.writingSince {
            let waited = ContinuousClock.now - since
            if waited >= bound {
                return "a write has waited \(waited.components.seconds) s for the store (bound \(bound.components.seconds) s): its write lock is held or commits hang"
            }
        }
        return current.failure.map { "the last write failed: \($0)" }
    }

    /// Whether a write has been pending for longer than `bound`: the watchdog's test.
    func isStalled(bound: Duration) -> Bool {
        guard let since = state.withLockedValue({ $0.writingSince }) else { return false }
        return ContinuousClock.now - since >= bound
    }
}
