import SharedMetrics

/// Viaplay film URL → YouTube trailers.
///
/// - `GET /api/v1/trailers?url=…`, and the earlier services' `GET /api/trailer?url=…` and
///   `GET /api/v1/trailer/?url=…` in their own shapes.
/// - `POST /api/v1/content-events` (admin token): announces new content; the pool's consumer
///   prefetches it so that the first request is a hit.
/// - A refresher re-validates old answers in the background.
public struct TrailersFeature: Feature {
    public let name = "trailers"
    private let runtime: TrailersRuntime

    public init(services: Services) throws(SettingsError) {
        let settings = try TrailersSettings(services.settings.reader, threads: services.settings.threads)
        runtime = TrailersRuntime(services: services, settings: settings)
    }

    /// Parses the settings as a worker would, for `marquee config check`.
    public static func validate(_ reader: SettingsReader) throws(SettingsError) {
        _ = try TrailersSettings(reader, threads: Settings(reader).threads)
    }

    public func register(in router: inout Router) {
        let runtime = self.runtime
        router.get("/api/v1/trailers") { request in try runtime.trailers(request, shape: .full) }
        router.get("/api/trailer") { request in try runtime.trailers(request, shape: .firstTrailerURL) }
        router.get("/api/v1/trailer/") { request in
            LegacyTrailerErrors.answer(request) { () throws(HTTPError) in try runtime.trailers(request, shape: .trailerURLs) }
        }
        router.post("/api/v1/content-events") { request in try runtime.contentEvents(request) }
    }

    public func start() {
        runtime.start()
    }

    public func stop() {
        runtime.stop()
    }

    public func prepareReload(_ reader: SettingsReader) throws(SettingsError) -> @Sendable () -> Void {
        let settings = try TrailersSettings(reader, threads: runtime.threads)
        let runtime = self.runtime
        return { runtime.apply(settings) }
    }

    public func status() -> JSONValue {
        runtime.status()
    }

    public func collectMetrics(into page: inout MetricsPage) {
        runtime.collectMetrics(into: &page)
    }

    public func degradation() -> String? {
        runtime.metrics.servedStale(within: 60_000) ? "served stale trailers in the last minute: an upstream is failing" : nil
    }
}
