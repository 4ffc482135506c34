import CoreMetrics
import NIOConcurrencyHelpers

/// The one place that counts upstream calls: per upstream and outcome for the status page,
/// and through swift-metrics for the pool (calls, errors by kind, latency, single-flight
/// joins, bulkhead rejections).
public final class UpstreamMetrics: Sendable {
    private let counts = NIOLockedValueBox<[String: [String: Int]]>([:])
    private let handles = NIOLockedValueBox<[String: Handles]>([:])

    private final class Handles: Sendable {
        let calls: Counter
        let duration: Timer
        let joins: Counter
        let rejections: Counter
        let errors: [String: Counter]

        init(_ upstream: String) {
            let label = [("upstream", upstream)]
            calls = Counter(label: MetricNames.upstreamCalls, dimensions: label)
            duration = Timer(label: MetricNames.upstreamDuration, dimensions: label)
            joins = Counter(label: MetricNames.upstreamJoins, dimensions: label)
            rejections = Counter(label: MetricNames.upstreamRejections, dimensions: label)
            var errors: [String: Counter] = [:]
            for kind in UpstreamMetrics.errorKinds {
                errors[kind] = Counter(label: MetricNames.upstreamErrors, dimensions: label + [("kind", kind)])
            }
            self.errors = errors
        }
    }

    static let errorKinds = ["timeout", "connect", "status", "decode", "bulkhead", "other"]

    private func handles(_ upstream: String) -> Handles {
        handles.withLockedValue { handles in
            if let existing = handles[upstream] { return existing }
            let made = Handles(upstream)
            handles[upstream] = made
            return made
        }
    }

    /// One HTTP attempt, how it ended and how long it took.
    public func record(_ upstream: String, _ outcome: String, duration: Duration) {
        counts.withLockedValue { $0[upstream, default: [:]][outcome, default: 0] += 1 }
        let handles = handles(upstream)
        handles.calls.increment()
        handles.duration.recordNanoseconds(duration.nanoseconds)
        if let kind = Self.errorKind(outcome) { handles.errors[kind]?.increment() }
    }

    /// An answer that came back but cannot be used (`UpstreamError.malformed`).
    public func undecodable(_ upstream: String) {
        counts.withLockedValue { $0[upstream, default: [:]]["malformed", default: 0] += 1 }
        handles(upstream).errors["decode"]?.increment()
    }

    /// A lookup that waited for the same lookup in flight elsewhere in the pool instead of calling.
    public func joined(_ upstream: String) {
        handles(upstream).joins.increment()
    }

    /// A lookup refused because the worker's bulkhead for it was full.
    public func rejected(_ upstream: String) {
        let handles = handles(upstream)
        handles.rejections.increment()
        handles.errors["bulkhead"]?.increment()
    }

    private static func errorKind(_ outcome: String) -> String? {
        switch outcome {
        case "ok", "client_error": nil
        case "timeout": "timeout"
        case "connection_error": "connect"
        case "server_error", "rate_limited": "status"
        default: "other"
        }
    }

    public var status: JSONValue {
        counts.withLockedValue { counts in
            .object(counts.mapValues { outcomes in .object(outcomes.mapValues { .int($0) }) })
        }
    }
}
