import CoreMetrics
import Foundation
import SharedMetrics

/// Makes this worker's metrics pool-wide: takes a slot file in the store directory's
/// metrics/ folder and bootstraps swift-metrics with it, before anything makes a metric.
public enum MetricsBootstrap {
    /// Nil when metrics are off; throws when the folder cannot be written. A worker that
    /// finds every slot held by a live process runs without metrics and says so.
    public static func start(_ settings: Settings, environment: [String: String]) throws -> SharedMetricsFactory? {
        guard settings.metricsEnabled else { return nil }
        guard let factory = try SharedMetricsFactory(directory: settings.metricsDirectory) else {
            FileHandle.standardError.write(Data("marquee: every metrics slot in \(settings.metricsDirectory) is held; this worker runs without metrics\n".utf8))
            return nil
        }
        MetricsSystem.bootstrap(factory)
        countStart(factory, instance: environment["MARQUEE_INSTANCE"])
        return factory
    }

    /// A worker that starts where an earlier one of its instance ran is a restart. The
    /// instance is systemd's (`marquee@N`) or `marquee pool`'s slot; without one, the file slot.
    private static func countStart(_ factory: SharedMetricsFactory, instance: String?) {
        let instance = instance ?? URL(fileURLWithPath: factory.path).deletingPathExtension().lastPathComponent
        let dimensions = [("instance", instance)]
        let pool = PoolMetrics.read(directory: factory.directory)
        // Made even when 0, so that increase() sees the first restart.
        let restarts = Counter(label: MetricNames.workerRestarts, dimensions: dimensions)
        if pool.counters(named: MetricNames.workerStarts).contains(where: { $0.labels["instance"] == instance && $0.value > 0 }) {
            restarts.increment()
        }
        Counter(label: MetricNames.workerStarts, dimensions: dimensions).increment()
    }
}
