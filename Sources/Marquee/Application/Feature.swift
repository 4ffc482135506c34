import LMDBStore

/// A route family: its routes, its background work, its settings and what it reports.
public protocol Feature: Sendable {
    /// The key of this feature's section on the status page.
    var name: String { get }
    func register(in router: inout Router)
    /// Starts background work once the worker accepts requests.
    func start()
    /// Stops background work; called before the worker drains.
    func stop()
    /// Applies new settings on reload; throwing rejects the whole reload.
    func reload(_ reader: SettingsReader) throws(SettingsError)
    /// This feature's counters for the status page.
    func status() -> JSONValue
    /// nil when healthy, else why the feature is degraded.
    func degradation() -> String?
}

extension Feature {
    public func start() {}
    public func stop() {}
    public func reload(_ reader: SettingsReader) throws(SettingsError) {}
    public func status() -> JSONValue { .object([:]) }
    public func degradation() -> String? { nil }
}
