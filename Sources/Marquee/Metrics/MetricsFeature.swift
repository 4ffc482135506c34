import FastCGI
import Foundation
import LMDBStore
import SharedMetrics

/// `GET /metrics`: the whole pool's figures in the Prometheus text format, whichever worker
/// nginx picked. Counters and histograms come summed from every worker's file in the store
/// directory's metrics/ folder (dead workers' included); the store's sizes and each
/// feature's queue depths are read at scrape time. For MARQUEE_INTERNAL_NETWORKS only, in
/// nginx and here.
public struct MetricsFeature: Feature {
    public let name = "metrics"
    private let services: Services
    private let peers: @Sendable () -> [any Feature]

    public init(services: Services, peers: @escaping @Sendable () -> [any Feature]) {
        self.services = services
        self.peers = peers
    }

    public func register(in router: inout Router) {
        let services = self.services
        let peers = self.peers
        router.get("/metrics", admitting: CallerRule.internalNetworks.admission(services)) { _ in
            let settings = services.settings
            guard settings.metricsEnabled else {
                throw HTTPError(404, "not_found", "metrics are off in this worker (MARQUEE_METRICS=off)")
            }
            var page = MetricsPage(help: MetricNames.help)
            page.add(PoolMetrics.read(directory: settings.metricsDirectory))
            if let stats = try? services.store.stats() {
                page.gauge("marquee_store_map_size_bytes", [], Double(stats.mapBytes))
                page.gauge("marquee_store_used_bytes", [], Double(stats.usedBytes))
                page.gauge("marquee_store_entries", [], Double(stats.entries))
                page.gauge("marquee_store_readers", [], Double(stats.readers))
            }
            page.gauge("marquee_build_info", [("version", MarqueeVersion.current), ("commit", MarqueeVersion.commit)], 1)
            for feature in peers() { feature.collectMetrics(into: &page) }
            return FastCGIResponse(status: 200, headers: [(name: "Content-Type", value: MetricsPage.contentType)],
                                   body: Array(page.render().utf8))
        }
    }
}
