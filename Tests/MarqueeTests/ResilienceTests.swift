import Foundation
import Testing

/// Reloads that are refused whole, store stalls seen by health and the watchdog, the request
/// time limit and the worker's recycling.
@Suite("Resilience", .serialized)
struct ResilienceTests {
    @Test("a reload the last feature refuses leaves every feature's settings as they were; a valid one applies them all")
    func refusedReloadChangesNothing() async throws {
        let directory = TestPaths.temporaryDirectory("reload-refused")
        defer { try? FileManager.default.removeItem(at: directory) }
        let envFile = directory.appendingPathComponent("marquee.env")
        try "MARQUEE_MAX_BODY_BYTES=1000\n".write(to: envFile, atomically: true, encoding: .utf8)
        let stack = try await Stack("reload-refused", workers: 1, environment: ["MARQUEE_ENV_FILE": envFile.path])
        defer { stack.stop() }
        let before = try await Self.reloadable(stack)
        #expect(before == Figures(generation: 1, maxBodyBytes: 1000, streamLimit: 3, moviesInterval: 50, bulkheadLimit: 2))

        // Users, Movies and the worker accept their new values; Trailers, the last feature, refuses its own.
        let changed = "MARQUEE_MAX_BODY_BYTES=2000\nMARQUEE_STREAM_LIMIT=5\nMARQUEE_MOVIES_REFRESH_SECONDS=30\n"
        try (changed + "MARQUEE_TRAILERS_MAX_UPSTREAM=99\n").write(to: envFile, atomically: true, encoding: .utf8)
        stack.workers[0].signal(SIGHUP)
        try await UsersTests.waitForLog("reload refused, keeping the running configuration", in: stack)
        let refusal = stack.workers[0].log.split(separator: "\n").first { $0.contains("reload refused") }
        #expect(refusal?.contains("MARQUEE_TRAILERS_MAX_UPSTREAM") == true, "refused by the last feature: \(refusal ?? "")")
        #expect(try await Self.reloadable(stack) == before)
        #expect(try await stack.client.request("POST", "/api/v1/test/echo", body: Data(count: 1500)).status == 413)

        try (changed + "MARQUEE_TRAILERS_MAX_UPSTREAM=1\n").write(to: envFile, atomically: true, encoding: .utf8)
        stack.workers[0].signal(SIGHUP)
        try await UsersTests.waitForLog("configuration reloaded", in: stack)
        #expect(try await Self.reloadable(stack) == Figures(generation: 2, maxBodyBytes: 2000, streamLimit: 5, moviesInterval: 30, bulkheadLimit: 1))
    }

    @Test("another process holding the store's write lock: health 503 within the stall bound and WATCHDOG=1 stops; both come back after release")
    func storeStall() async throws {
        let directory = TestPaths.temporaryDirectory("stall-notify")
        defer { try? FileManager.default.removeItem(at: directory) }
        let notifications = try WatchdogPings(path: directory.appendingPathComponent("notify.sock").path)
        defer { notifications.stop() }
        let stack = try await Stack("store-stall", workers: 1, environment: [
            "MARQUEE_STORE_STALL_SECONDS": "1", "NOTIFY_SOCKET": notifications.path, "WATCHDOG_USEC": "400000",
        ])
        defer { stack.stop() }
        try await Task.sleep(for: .seconds(1))
        #expect(notifications.pings(since: .now - .seconds(1)) >= 2, "the watchdog pings every 200 ms while the store commits")

        let holder = try ChildProcess("holder", executable: TestPaths.binaries.appendingPathComponent("StoreStress").path,
                                      arguments: ["hold-write", stack.directory.appendingPathComponent("store").path, "6", "256"],
                                      logDirectory: stack.directory)
        defer { holder.stop() }
        try #require(try await eventually(within: .seconds(10)) { holder.log.contains("holding") })
        let held = ContinuousClock.now

        // The bound (1 s), plus up to one probe interval (1 s) before the probe write starts to wait.
        var unavailable: HTTPAnswer?
        try #require(try await eventually(within: .seconds(4)) {
            let answer = try? await stack.client.get("/api/v1/health")
            if answer?.status == 503 { unavailable = answer }
            return unavailable != nil
        })
        let stalledAt = ContinuousClock.now
        #expect(stalledAt - held < .seconds(3.5))
        #expect(unavailable?.json()?["status"] as? String == "unavailable")
        #expect((unavailable?.json()?["reason"] as? String)?.contains("store") == true, "\(unavailable?.text ?? "")")
        try await Task.sleep(for: .seconds(1.5))
        #expect(try await stack.client.get("/api/v1/health").status == 503)
        #expect(notifications.pings(since: stalledAt + .milliseconds(500)) == 0, "no WATCHDOG=1 while the store cannot commit")

        #expect(holder.waitForExit(timeout: .seconds(10)) == 0)
        try #require(try await eventually(within: .seconds(4)) { (try? await stack.client.get("/api/v1/health"))?.status == 200 })
        let released = ContinuousClock.now
        try await Task.sleep(for: .seconds(1))
        #expect(notifications.pings(since: released) >= 2, "WATCHDOG=1 again once commits go through")
        #expect(stack.workers[0].isRunning)
    }

    @Test("a request past MARQUEE_REQUEST_TIMEOUT is answered 504 and logged slow; its thread still stuck at twice the limit recycles the worker with status 75")
    func requestTimeLimit() async throws {
        let fake = try FakeUpstream()
        defer { fake.stop() }
        // TMDB hangs and the upstream deadline (30 s) is far past the request time limit.
        let stack = try await Stack("request-timeout", workers: 1, environment: TrailersFixtures.environment(fake, [
            "MARQUEE_REQUEST_TIMEOUT": "1.5", "MARQUEE_SLOW_REQUEST_SECONDS": "0.5", "MARQUEE_UPSTREAM_TIMEOUT": "30",
        ]))
        defer { stack.stop() }
        let film = TrailersFixtures.add(fake, slug: "hangs-past-the-limit", imdbId: "tt0000401", tmdbId: 401)
        fake.set(film.paths[1], .hang)
        let worker = stack.workers[0]

        let started = ContinuousClock.now
        let answer = try await stack.client.get(TrailersFixtures.path(film.url))
        let elapsed = ContinuousClock.now - started
        #expect(answer.status == 504)
        #expect(answer.errorCode == "request_timeout")
        #expect(elapsed >= .seconds(1.4) && elapsed < .seconds(3), "answered after \(elapsed)")
        #expect(try await stack.client.get("/api/v1/health").status == 200, "the other threads still serve")

        let slow = worker.log.split(separator: "\n").first { $0.contains(#""msg":"slow request""#) }
        let line = try #require(slow.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] })
        #expect(line["method"] as? String == "GET")
        #expect(line["path"] as? String == "/api/v1/trailers")
        #expect((line["request_id"] as? String)?.count == 32)
        #expect((line["ms"] as? Int).map { $0 >= 500 } == true)

        #expect(worker.waitForExit(timeout: .seconds(10)) == 75)
        #expect(ContinuousClock.now - started >= .seconds(3))
        #expect(worker.log.contains("request thread stuck past twice the time limit: recycling the worker"))
        #expect(worker.log.contains(#""msg":"recycled: exiting for a fresh worker""#))
    }

    @Test("every request thread stuck past the time limit: WATCHDOG=1 stops, then the worker recycles itself")
    func allThreadsStuck() async throws {
        let directory = TestPaths.temporaryDirectory("stuck-notify")
        defer { try? FileManager.default.removeItem(at: directory) }
        let notifications = try WatchdogPings(path: directory.appendingPathComponent("notify.sock").path)
        defer { notifications.stop() }
        // The test-only sleep route (MARQUEE_TEST_ROUTES=1, set by Stack) holds both threads.
        let stack = try await Stack("all-stuck", workers: 1, environment: [
            "MARQUEE_THREADS": "2", "MARQUEE_REQUEST_TIMEOUT": "2", "NOTIFY_SOCKET": notifications.path, "WATCHDOG_USEC": "400000",
        ])
        defer { stack.stop() }
        let started = ContinuousClock.now
        let sleepers = (0..<2).map { _ in Task { try? await stack.client.get("/api/v1/test/sleep?ms=20000") } }
        for sleeper in sleepers {
            #expect(await sleeper.value?.status == 504)
        }
        #expect(ContinuousClock.now - started < .seconds(3.5))
        #expect(notifications.pings(since: started + .seconds(2.5)) == 0, "no WATCHDOG=1 while every thread is stuck")
        #expect(notifications.pings(since: started) >= 3, "pings before the threads were stuck")
        #expect(stack.workers[0].waitForExit(timeout: .seconds(10)) == 75)
        #expect(notifications.pings(since: started + .seconds(2.5)) == 0)
    }

    struct Figures: Equatable {
        var generation: Int?
        var maxBodyBytes: Int?
        var streamLimit: Int?
        var moviesInterval: Double?
        var bulkheadLimit: Int?
    }

    /// What the status page shows of one setting per feature that reloads.
    static func reloadable(_ stack: Stack) async throws -> Figures {
        let status = try #require(try await stack.client.get("/api/v1/status").json())
        let config = status["config"] as? [String: Any]
        let features = status["features"] as? [String: Any]
        let users = features?["users"] as? [String: Any]
        let movies = (features?["movies"] as? [String: Any])?["refresh"] as? [String: Any]
        let trailers = (features?["trailers"] as? [String: Any])?["bulkhead"] as? [String: Any]
        return Figures(generation: config?["generation"] as? Int, maxBodyBytes: config?["maxBodyBytes"] as? Int,
                       streamLimit: users?["streamLimit"] as? Int, moviesInterval: movies?["intervalSeconds"] as? Double,
                       bulkheadLimit: trailers?["limit"] as? Int)
    }
}

/// A test-owned $NOTIFY_SOCKET: receives the worker's sd_notify datagrams and notes when each came.
private final class WatchdogPings: @unchecked Sendable {
    let path: String
    private let fd: Int32
    private let lock = NSLock()
    private var received: [(at: ContinuousClock.Instant, message: String)] = []
    private var stopped = false
    private var thread: Thread?

    init(path: String) throws {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard fd >= 0, bound == 0 else { throw StackError("cannot bind \(path)") }
        var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let thread = Thread { [self] in
            var buffer = [UInt8](repeating: 0, count: 4096)
            while !isStopped {
                let count = recv(fd, &buffer, buffer.count, 0)
                guard count > 0 else { continue }
                let message = String(decoding: buffer[..<count], as: UTF8.self)
                lock.withLock { received.append((.now, message)) }
            }
        }
        self.thread = thread
        thread.start()
    }

    private var isStopped: Bool { lock.withLock { stopped } }

    /// WATCHDOG=1 datagrams received since `instant`.
    func pings(since instant: ContinuousClock.Instant) -> Int {
        lock.withLock { received.filter { $0.at >= instant && $0.message.split(separator: "\n").contains("WATCHDOG=1") }.count }
    }

    func stop() {
        lock.withLock { stopped = true }
        Thread.sleep(forTimeInterval: 0.2)
        close(fd)
    }
}
