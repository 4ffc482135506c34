import NIOConcurrencyHelpers

/// Every feature of a worker, built once; health and status read the list back.
public enum FeatureSet {
    public static func make(services: Services) throws(SettingsError) -> [any Feature] {
        let registry = Registry()
        let peers: @Sendable () -> [any Feature] = { registry.features }
        var features: [any Feature] = [
            HealthFeature(services: services, peers: peers),
            StatusFeature(services: services, peers: peers),
            MetricsFeature(services: services, peers: peers),
            try UsersFeature(services: services),
            try MoviesFeature(services: services),
            try VideosFeature(services: services),
            try TrailersFeature(services: services),
            OpenAPIFeature(),
        ]
        if try DiagnosticsFeature.isEnabled(services.settings.reader) {
            features.append(DiagnosticsFeature())
        }
        registry.set(features)
        return features
    }

    /// Parses every feature's settings without opening anything, for `marquee config check`.
    public static func validate(_ reader: SettingsReader) throws(SettingsError) {
        _ = try DiagnosticsFeature.isEnabled(reader)
        try UsersFeature.validate(reader)
        try MoviesFeature.validate(reader)
        try VideosFeature.validate(reader)
        try TrailersFeature.validate(reader)
    }

    private final class Registry: Sendable {
        private let storage = NIOLockedValueBox<[any Feature]>([])
        var features: [any Feature] { storage.withLockedValue { $0 } }
        func set(_ features: [any Feature]) { storage.withLockedValue { $0 = features } }
    }
}
