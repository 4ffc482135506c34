import Synchronization

/// Calls per upstream and outcome, for the status page.
public final class UpstreamMetrics: Sendable {
    private let counts = Mutex<[String: [String: Int]]>([:])

    public func record(_ upstream: String, _ outcome: String) {
        counts.withLock { $0[upstream, default: [:]][outcome, default: 0] += 1 }
    }

    public var status: JSONValue {
        counts.withLock { counts in
            .object(counts.mapValues { outcomes in .object(outcomes.mapValues { .int($0) }) })
        }
    }
}
