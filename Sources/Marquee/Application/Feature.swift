import LMDBStore
import SharedMetrics

/// A route family: its routes, its background work, its settings and what it reports.
public protocol Feature: Sendable {
    /// The key of this feature's section on the status page.
    var name: String { get }
    func register(in router: inout Router)
    /// Starts background work once the worker accepts requests.
    func start()
    /// Stops background work; called before the worker drains.
    func stop()
    /// Checks new settings on reload without applying them, and answers what applies them.
    /// Throwing refuses the whole reload: the worker applies nothing until every feature has
    /// accepted, so a refusal leaves every feature on its running settings.
    func prepareReload(_ reader: SettingsReader) throws(SettingsError) -> @Sendable () -> Void
    /// This feature's counters for the status page.
    func status() -> JSONValue
    /// nil when healthy, else why the feature is degraded.
    func degradation() -> String?
    /// Adds the pool-wide gauges this feature reads at scrape time (queue depths, ages).
    func collectMetrics(into page: inout MetricsPage)
}

extension Feature {
    public func start() {}
    public func stop() {}
    public func prepareReload(_ reader: SettingsReader) throws(SettingsError) -> @Sendable () -> Void { {} }
    public func status() -> JSONValue { .object([:]) }
    public func degradation() -> String? { nil }
    public func collectMetrics(into page: inout MetricsPage) {}
}
