import Synchronization

/// The settings in force and the bulkhead sized by them; a reload swaps both.
final class TrailersConfiguration: Sendable {
    private let current: Mutex<(settings: TrailersSettings, bulkhead: Bulkhead)>

    init(_ settings: TrailersSettings) {
        current = Mutex((settings, Bulkhead(limit: settings.maxUpstream)))
    }

    var settings: TrailersSettings { current.withLock { $0.settings } }
    var now: (settings: TrailersSettings, bulkhead: Bulkhead) { current.withLock { $0 } }

    /// Lookups already inside the old bulkhead finish there; a new limit applies to new ones.
    func apply(_ settings: TrailersSettings) {
        current.withLock { current in
            let bulkhead = current.bulkhead.limit == settings.maxUpstream ? current.bulkhead : Bulkhead(limit: settings.maxUpstream)
            current = (settings, bulkhead)
        }
    }
}
