import CoreMetrics

/// Stream grants, refusals at the plan's limit, and leases found expired, for the pool.
enum StreamMetrics {
    private static let grants = Counter(label: MetricNames.streamGrants)
    private static let refusals = Counter(label: MetricNames.streamRefusals)
    private static let expiries = Counter(label: MetricNames.streamExpiries)

    static func record(_ result: UserStore.GrantResult, expired: Int) {
        if expired > 0 { expiries.increment(by: expired) }
        guard case .decided(let outcome, _) = result else { return }
        switch outcome {
        case .granted: grants.increment()
        case .refused: refusals.increment()
        case .renewed: break
        }
    }
}
