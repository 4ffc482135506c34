import FastCGI
import Foundation
import LMDBStore
import Logging
import NIOConcurrencyHelpers

/// What every feature shares inside one worker process: the store, the live settings and
/// the logger. Settings change on reload, so read them per use rather than keep a copy.
public final class Services: Sendable {
    public let store: Store
    /// The system of record when MARQUEE_DATABASE_URL is set; nil keeps everything in `store`.
    public let database: Database?
    /// The worker's client for internet services, shared by every feature.
    public let upstream: UpstreamClient
    /// Whether the store still commits; health and the watchdog read it.
    let storeProbe: StoreProbe
    /// The requests in flight, for the time limit, the slow-request log and health.
    let supervisor = RequestSupervisor()
    /// Nil with MARQUEE_METRICS=off: the request path then skips metrics altogether.
    let requestMetrics: RequestMetrics?
    public let startedAt: ContinuousClock.Instant
    public let startedAtDate: Date
    private let current: NIOLockedValueBox<Snapshot>
    let serverCounters = NIOLockedValueBox<(@Sendable () -> FastCGIServer.Counters)?>(nil)

    public init(store: Store, settings: Settings, database: Database? = nil) {
        self.store = store
        self.database = database
        self.upstream = UpstreamClient(timeouts: settings.upstreamTimeouts)
        self.storeProbe = StoreProbe(store: store)
        self.requestMetrics = settings.metricsEnabled ? RequestMetrics() : nil
        self.startedAt = .now
        self.startedAtDate = Date()
        self.current = NIOLockedValueBox(Snapshot(settings: settings, generation: 1))
    }

    /// What a request reads once: swapping one reference on reload keeps the per-request cost
    /// to a lock and a retain.
    final class Snapshot: Sendable {
        let settings: Settings
        let generation: Int
        let logger: Logger

        init(settings: Settings, generation: Int) {
            self.settings = settings
            self.generation = generation
            self.logger = Services.makeLogger(settings)
        }
    }

    var snapshot: Snapshot { current.withLockedValue { $0 } }
    public var settings: Settings { snapshot.settings }
    public var logger: Logger { snapshot.logger }
    public var configGeneration: Int { snapshot.generation }

    func replace(_ settings: Settings) {
        current.withLockedValue { $0 = Snapshot(settings: settings, generation: $0.generation + 1) }
    }

    var counters: FastCGIServer.Counters {
        serverCounters.withLockedValue { $0?() } ?? FastCGIServer.Counters(served: 0, inFlight: 0, threads: 0)
    }

    static func makeLogger(_ settings: Settings) -> Logger {
        var logger = Logger(label: "marquee") { JSONLogHandler(label: $0) }
        logger.logLevel = switch settings.logLevel {
        case .debug: .debug
        case .info: .info
        case .notice: .notice
        case .warning: .warning
        case .error: .error
        }
        return logger
    }
}
