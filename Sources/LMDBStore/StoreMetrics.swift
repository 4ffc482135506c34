import CoreMetrics

/// What the store reports through swift-metrics, under `StoreOptions.metricsPrefix`: the
/// duration of each write transaction (its commit and flush included), the cache entries
/// evicted, and the writes refused for want of room.
final class StoreMetrics: Sendable {
    let writeDuration: Timer
    let evictions: Counter
    let fullRefusals: Counter

    init(prefix: String) {
        writeDuration = Timer(label: "\(prefix)_commit_duration_seconds")
        evictions = Counter(label: "\(prefix)_evictions_total")
        fullRefusals = Counter(label: "\(prefix)_full_refusals_total")
    }

    func recordWrite(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        writeDuration.recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
