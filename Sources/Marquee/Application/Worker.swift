import FastCGI
import Foundation
import LMDBStore
import Logging
import PostgresClient
import Synchronization

/// One long-lived worker process: a FastCGI server over the router, its features, the
/// systemd protocol (ready, reload, stop, watchdog) and store maintenance.
public final class Worker: Sendable {
    public let services: Services
    private let features: [any Feature]
    private let router: Router
    private let server: FastCGIServer
    private let notifier = SystemdNotifier()

    public init(services: Services, listener: FastCGIListener, features: [any Feature]) {
        self.services = services
        self.features = features
        var router = Router()
        for feature in features { feature.register(in: &router) }
        let routes = router
        self.router = routes
        let logHooks = FastCGIServer.ThreadHooks(
            started: { LogOutput.shared.bufferCurrentThread() },
            idle: { LogOutput.shared.flushCurrentThread() }
        )
        self.server = FastCGIServer(listener: listener, threads: services.settings.threads,
                                    activeThreads: services.settings.activeThreads, limits: services.settings.connectionLimits,
                                    hooks: logHooks) { [services] request in
            Worker.respond(to: request, router: routes, services: services)
        }
        let server = self.server
        services.serverCounters.withLockedValue { $0 = { server.counters } }
    }

    /// Serves until SIGTERM or SIGINT, then drains; returns the exit status.
    /// `ProcessSignals.block()` must have run before any thread started.
    public func run(listenerOrigin: String) -> Int32 {
        let logger = services.logger
        do {
            try server.start()
        } catch {
            logger.critical("cannot start", metadata: ["error": "\(error)"])
            return 1
        }
        let background = startBackground()
        for feature in features { feature.start() }
        let settings = services.settings
        logger.notice("worker ready", metadata: [
            "listen": "\(listenerOrigin)", "threads": "\(settings.threads)", "activeThreads": "\(settings.activeThreads)", "store": "\(settings.storeDirectory)",
            "version": "\(MarqueeVersion.current)",
        ])
        notifier.notify("READY=1\nSTATUS=serving on \(listenerOrigin) with \(settings.threads) threads\nMAINPID=\(getpid())")

        let supervisor = services.supervisor
        while true {
            switch ProcessSignals.wait(timeout: .milliseconds(200)) {
            case SIGHUP:
                reload()
            case SIGTERM, SIGINT:
                return drain(background)
            default:
                if supervisor.mustRecycle { return recycle(background) }
            }
        }
    }

    /// The exit status of a worker that recycled itself because a request thread stayed stuck
    /// past twice MARQUEE_REQUEST_TIMEOUT (75, EX_TEMPFAIL); systemd's Restart= starts a new one.
    public static let recycledExitStatus: Int32 = 75

    private func reload() {
        notifier.notify("RELOADING=1")
        let logger = services.logger
        do {
            let settings = try Settings(SettingsReader.current(), stateDirectory: ProcessInfo.processInfo.environment["STATE_DIRECTORY"])
            var applications: [@Sendable () -> Void] = []
            for feature in features { applications.append(try feature.prepareReload(settings.reader)) }
            for apply in applications { apply() }
            services.replace(settings)
            server.update(settings.connectionLimits)
            // A reloading worker lets go of its idle kept connections, as a stopping one does;
            // nginx retries a request that meets one closed under it.
            let closed = server.closeIdleConnections()
            services.logger.notice("configuration reloaded", metadata: [
                "generation": "\(services.configGeneration)", "idleConnectionsClosed": "\(closed)",
            ])
            notifier.notify("READY=1\nSTATUS=serving, configuration generation \(services.configGeneration)")
        } catch {
            logger.error("reload refused, keeping the running configuration", metadata: ["error": "\(error)"])
            notifier.notify("READY=1\nSTATUS=reload refused: \(error)")
        }
    }

    private func drain(_ background: [BackgroundThread]) -> Int32 {
        let logger = services.logger
        notifier.notify("STOPPING=1")
        let inFlight = server.counters.inFlight
        logger.notice("stopping: no new requests, draining", metadata: ["inFlight": "\(inFlight)"])
        server.stop()
        for feature in features { feature.stop() }
        for thread in background { thread.stop() }
        let drained = server.waitUntilStopped(timeout: services.settings.drainTime)
        if drained {
            logger.notice("stopped", metadata: ["served": "\(server.counters.served)"])
        } else {
            logger.warning("drain time over, exiting with requests in flight", metadata: ["inFlight": "\(server.counters.inFlight)"])
        }
        LogOutput.shared.flushAll()
        return 0
    }

    /// Stops accepting, lets the requests that are not stuck finish within the drain time, and
    /// exits with `recycledExitStatus`: a stuck thread cannot be taken back any other way.
    private func recycle(_ background: [BackgroundThread]) -> Int32 {
        let settings = services.settings
        notifier.notify("STOPPING=1\nSTATUS=recycling: a request thread is stuck")
        server.stop()
        for feature in features { feature.stop() }
        for thread in background { thread.stop() }
        let deadline = ContinuousClock.now + settings.drainTime
        while server.counters.inFlight > services.supervisor.overdue(limit: settings.requestTimeout), ContinuousClock.now < deadline {
            usleep(10_000)
        }
        services.logger.critical("recycled: exiting for a fresh worker", metadata: [
            "exitStatus": "\(Self.recycledExitStatus)", "inFlight": "\(server.counters.inFlight)",
        ])
        LogOutput.shared.flushAll()
        return Self.recycledExitStatus
    }

    private func startBackground() -> [BackgroundThread] {
        var threads: [BackgroundThread] = []
        let services = self.services
        let store = services.store
        threads.append(BackgroundThread(name: "store-maintenance", interval: .seconds(5)) {
            let cleared = store.clearStaleReaders()
            if cleared > 0 {
                services.logger.warning("cleared reader slots left by dead processes", metadata: ["slots": "\(cleared)"])
            }
            // A fill that failed or whose process died leaves its lease until this sweep.
            _ = try? store.sweepLeases()
        })
        threads.append(BackgroundThread(name: "log-flush", interval: Self.logFlushInterval) {
            LogOutput.shared.flushAll()
        })
        threads.append(BackgroundThread(name: "store-probe", interval: .seconds(1)) {
            services.storeProbe.round()
        })
        if let metrics = services.requestMetrics {
            let server = self.server
            threads.append(BackgroundThread(name: "metrics-sampler", interval: .seconds(1)) {
                metrics.threadsBusy.set(server.counters.inFlight)
            })
        }
        if let database = services.database {
            threads.append(BackgroundThread(name: "database-probe", interval: .seconds(1)) {
                database.probe(logger: services.logger)
            })
        }
        threads.append(BackgroundThread(name: "request-supervisor", interval: .milliseconds(200)) {
            let settings = services.settings
            services.supervisor.round(timeout: settings.requestTimeout, slow: settings.slowRequest, logger: services.logger)
        })
        if let interval = SystemdNotifier.watchdogInterval() {
            let notifier = self.notifier
            threads.append(BackgroundThread(name: "watchdog", interval: interval / 2) {
                let settings = services.settings
                guard !settings.stallWatchdog else { return }
                // Alive means making progress: the store reads, a store write commits within the
                // bound, and not every request thread is stuck. Without the ping systemd aborts
                // the worker and Restart= brings a new one.
                do {
                    _ = try store.get(StoreProbe.key)
                } catch {
                    return
                }
                if services.storeProbe.isStalled(bound: settings.storeStall) { return }
                if services.supervisor.overdue(limit: settings.requestTimeout) >= settings.threads { return }
                notifier.notify("WATCHDOG=1")
            })
        }
        return threads
    }

    /// The longest a request line waits in a busy thread's buffer.
    static let logFlushInterval = Duration.milliseconds(200)

    static func respond(to fastCGI: FastCGIRequest, router: Router, services: Services) -> FastCGIResponse {
        let started = ContinuousClock.now
        let metrics = services.requestMetrics
        metrics?.begin()
        let snapshot = services.snapshot
        let settings = snapshot.settings
        var request = Request(fastCGI, maxBodyBytes: settings.maxBodyBytes)
        let requestId = request.requestId
        let ticket = services.supervisor.begin(fastCGI, method: request.method, path: request.path, requestId: requestId)
        var response: FastCGIResponse
        if let declared = request.param("CONTENT_LENGTH").flatMap(Int.init), declared > settings.maxBodyBytes {
            // Refused before routing, so that no route reads a body it would refuse anyway.
            response = HTTPError(.payloadTooLarge, "the body is over the limit of \(settings.maxBodyBytes) bytes").response
        } else {
            response = dispatch(&request, router: router, services: services)
        }
        if services.supervisor.end(ticket) {
            // The supervisor answered 504 already; this answer is dropped.
            response.status = 504
        }
        response.headers.reserveCapacity(response.headers.count + 2)
        response.headers.append(everyAnswerHeader)
        if let requestId { response.headers.append((name: "X-Request-Id", value: requestId)) }
        // `components` divides a 128-bit count: once, not once per part.
        let (seconds, attoseconds) = (ContinuousClock.now - started).components
        metrics?.end(route: request.route, method: request.method, status: response.status,
                     nanoseconds: seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
        let micros = seconds * 1_000_000 + attoseconds / 1_000_000_000_000
        if snapshot.logger.logLevel <= .info {
            JSONLogHandler.writeRequestLine(method: request.method, route: request.route, status: response.status, micros: micros,
                                            requestId: requestId)
        }
        return response
    }

    /// Browsers must take every answer as the type it declares, never sniff one into HTML.
    private static let everyAnswerHeader = (name: "X-Content-Type-Options", value: "nosniff")

    private static func dispatch(_ request: inout Request, router: Router, services: Services) -> FastCGIResponse {
        switch router.match(method: request.method, path: request.path) {
        case .found(let handler, let route, let parameters):
            request.route = route
            request.parameters = parameters
            do {
                return try handler(&request)
            } catch let error as HTTPError {
                return error.response
            } catch let error as StoreError where error.isFull {
                request.logger(services.logger).warning("store full", metadata: ["route": "\(route)", "error": "\(error)"])
                return HTTPError.storeFull.response
            } catch let error as PostgresError where error.kind == .unavailable {
                request.logger(services.logger).warning("database unavailable", metadata: ["route": "\(route)", "error": "\(error)"])
                return HTTPError.databaseUnavailable.response
            } catch {
                request.logger(services.logger).error("unhandled error", metadata: ["route": "\(route)", "error": "\(error)"])
                return HTTPError(.internalError, "the request failed; the worker log has the cause").response
            }
        case .methodNotAllowed(let route, let allowed):
            request.route = route
            return HTTPError(.methodNotAllowed, "\(request.method) is not allowed here; use \(allowed.joined(separator: ", "))",
                                headers: [(name: "Allow", value: allowed.joined(separator: ", "))]).response
        case .notFound:
            return HTTPError.notFound("no route for \(request.method) \(request.path)").response
        }
    }
}
