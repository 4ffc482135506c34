import NIOConcurrencyHelpers

/// The settings in force and the bulkhead sized by them; a reload swaps both at once.
final class TrailersConfiguration: Sendable {
    /// What a request reads once: one reference, so the hot path pays a lock and a retain
    /// rather than a copy of every setting.
    final class Snapshot: Sendable {
        let settings: TrailersSettings
        let bulkhead: Bulkhead
        /// Film URLs checked against this snapshot's policy.
        let films = FilmURLMemo()

        init(settings: TrailersSettings, bulkhead: Bulkhead) {
            self.settings = settings
            self.bulkhead = bulkhead
        }
    }

    private let current: NIOLockedValueBox<Snapshot>

    init(_ settings: TrailersSettings) {
        current = NIOLockedValueBox(Snapshot(settings: settings, bulkhead: Self.bulkhead(settings)))
    }

    var now: Snapshot { current.withLockedValue { $0 } }
    var settings: TrailersSettings { now.settings }

    /// Lookups already inside the old bulkhead finish there; a new limit applies to new ones.
    func apply(_ settings: TrailersSettings) {
        current.withLockedValue { current in
            let unchanged = current.bulkhead.limit == settings.maxUpstream && current.bulkhead.waitLimit == settings.maxWaiting
            current = Snapshot(settings: settings, bulkhead: unchanged ? current.bulkhead : Self.bulkhead(settings))
        }
    }

    private static func bulkhead(_ settings: TrailersSettings) -> Bulkhead {
        Bulkhead(limit: settings.maxUpstream, waitLimit: settings.maxWaiting)
    }
}
