import FastCGI
import Foundation
import LMDBStore
import Logging
import Synchronization

/// What every feature shares inside one worker process: the store, the live settings and
/// the logger. Settings change on reload, so read them per use rather than keep a copy.
public final class Services: Sendable {
    public let store: Store
    /// The worker's client for internet services, shared by every feature.
    public let upstream: UpstreamClient
    public let startedAt: ContinuousClock.Instant
    public let startedAtDate: Date
    private let current: Mutex<(settings: Settings, generation: Int, logger: Logger)>
    let serverCounters = Mutex<(@Sendable () -> FastCGIServer.Counters)?>(nil)

    public init(store: Store, settings: Settings) {
        self.store = store
        self.upstream = UpstreamClient(timeouts: settings.upstreamTimeouts)
        self.startedAt = .now
        self.startedAtDate = Date()
        self.current = Mutex((settings, 1, Self.makeLogger(settings)))
    }

    public var settings: Settings { current.withLock { $0.settings } }
    public var logger: Logger { current.withLock { $0.logger } }
    public var configGeneration: Int { current.withLock { $0.generation } }

    func replace(_ settings: Settings) {
        current.withLock { $0 = (settings, $0.generation + 1, Self.makeLogger(settings)) }
    }

    var counters: FastCGIServer.Counters {
        serverCounters.withLock { $0?() } ?? FastCGIServer.Counters(served: 0, inFlight: 0, threads: 0)
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
