@testable import FastCGI
import Foundation
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// nginx keeps its FastCGI connections (`fastcgi_keep_conn on`, an upstream `keepalive` pool),
/// and no number of idle or half-sent connections can take the workers' threads.
@Suite("Kept FastCGI connections", .serialized)
struct KeepAliveTests {
    @Test("2,000 idle and 500 half-record connections to the worker socket: health answers 200 within 100 ms throughout, and each is closed by its deadline or the bound")
    func floodOfIdleAndHalfSentConnections() async throws {
        try Self.ensureOpenFiles(3_500)
        let idleTimeout = 8.0, readDeadline = 1.0, bound = 600
        let stack = try await Stack("keepalive-flood", workers: 2, environment: [
            "MARQUEE_THREADS": "4", "MARQUEE_LOG_LEVEL": "warning",
            "MARQUEE_FASTCGI_MAX_CONNECTIONS": "\(bound)", "MARQUEE_FASTCGI_IDLE_TIMEOUT": "\(idleTimeout)",
            "MARQUEE_FASTCGI_READ_DEADLINE": "\(readDeadline)",
        ])
        defer { stack.stop() }
        let probe = LatencyProbe(raw: stack.raw)
        defer { probe.stop() }

        let started = ContinuousClock.now
        var idle: [Int32] = []
        var half: [Int32: ContinuousClock.Instant] = [:]
        defer { for fd in idle + Array(half.keys) { close(fd) } }
        for _ in 0..<2_000 { idle.append(try Self.connect(stack.socketPath)) }
        // Half of a begin record: its header and half its body.
        let halfRecord: [UInt8] = [1, 1, 0, 1, 0, 8, 0, 0, 0, 1, 0, 0]
        for _ in 0..<500 {
            let fd = try Self.connect(stack.socketPath)
            let written = halfRecord.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            try #require(written == halfRecord.count)
            half[fd] = ContinuousClock.now
        }

        let closedAt = Self.waitForEndOfFile(idle + Array(half.keys), within: .seconds(idleTimeout + 15))
        let answers = probe.stop()

        #expect(closedAt.count == 2_500, "\(2_500 - closedAt.count) connections still open \(idleTimeout + 15) s on")
        let lateHalf = half.filter { fd, sent in closedAt[fd].map { $0 - sent > .seconds(readDeadline + 4) } ?? true }
        #expect(lateHalf.isEmpty, "\(lateHalf.count) half-record connections outlived the \(readDeadline) s read deadline by more than 4 s")
        // Each worker holds at most `bound`: before any idle timeout could pass, the bound alone
        // closed at least the 2,500 less what the two workers may hold, less the 500 half ones.
        let closedByBound = idle.filter { closedAt[$0].map { $0 - started < .seconds(idleTimeout) } ?? false }.count
        #expect(closedByBound >= 2_500 - 2 * bound - 500, "only \(closedByBound) idle connections closed by the bound")

        let failed = answers.filter { $0.status != 200 }
        let slow = answers.filter { $0.elapsed > .milliseconds(100) }
        let worst = answers.map(\.elapsed).max() ?? .zero
        #expect(answers.count >= 50, "only \(answers.count) health requests were made")
        #expect(failed.isEmpty, "health answered \(failed.map(\.status)) during the flood")
        // A loaded test machine may delay a few; a thread pinned by the flood would delay all (5 s before).
        #expect(slow.count * 20 <= answers.count, "\(slow.count) of \(answers.count) health answers took over 100 ms (worst \(worst))")
        #expect(worst < .seconds(1), "the slowest health answer took \(worst)")
        print("flood: \(answers.count) health answers, \(slow.count) over 100 ms, worst \(worst); \(closedByBound) idle closed by the bound")
    }

    @Test("128 new connections while 32 kept ones send back to back: each listener event accepts all that wait, so the new ones are served within a few passes of the busy ones")
    func newConnectionsDoNotQueueBehindBusyOnes() async throws {
        // One request thread: the order in which it takes events is the only order there is.
        let stack = try await Stack("keepalive-accept", workers: 1, environment: ["MARQUEE_THREADS": "1", "MARQUEE_LOG_LEVEL": "warning"])
        defer { stack.stop() }
        let worker = stack.workers[0]
        defer { worker.signal(SIGCONT) }
        let health = FastCGIClient.keptRequest(params: [
            ("REQUEST_METHOD", "GET"), ("DOCUMENT_URI", "/api/v1/health"), ("REQUEST_URI", "/api/v1/health"), ("QUERY_STRING", ""),
            ("REMOTE_ADDR", "127.0.0.1"), ("SERVER_PROTOCOL", "HTTP/1.1"), ("CONTENT_LENGTH", "0"),
        ])
        let busyServed = Mutex(0)
        let stopping = Mutex(false)
        let busyFailures = Collected<String>()
        let lanes = try (0..<32).map { _ in
            let fd = try Self.connect(stack.socketPath)
            return JoinableThread {
                defer { close(fd) }
                while !stopping.withLock({ $0 }) {
                    guard Self.sendAll(health, to: fd), let answer = FastCGIClient.readKeptAnswer(fd), answer.status == 200 else {
                        busyFailures.append("a kept connection failed")
                        return
                    }
                    busyServed.withLock { $0 += 1 }
                }
            }
        }
        defer {
            stopping.withLock { $0 = true }
            for lane in lanes { lane.join(timeout: .seconds(10)) }
        }
        while busyServed.withLock({ $0 }) < 500 { try await Task.sleep(for: .milliseconds(20)) }

        // The new connections wait in the backlog, each with its request sent, while the worker is stopped.
        worker.signal(SIGSTOP)
        var fresh: [Int32] = []
        defer { for fd in fresh { close(fd) } }
        for _ in 0..<128 {
            let fd = try Self.connect(stack.socketPath)
            fresh.append(fd)
            try #require(Self.sendAll(health, to: fd))
        }
        try await Task.sleep(for: .milliseconds(200))
        let before = busyServed.withLock { $0 }
        worker.signal(SIGCONT)

        var answered: [Int32: Int] = [:]
        var busyServedBy: [Int] = []
        let deadline = ContinuousClock.now + .seconds(60)
        while answered.count < fresh.count && ContinuousClock.now < deadline {
            var polled = fresh.filter { answered[$0] == nil }.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            guard poll(&polled, nfds_t(polled.count), 100) > 0 else { continue }
            for entry in polled where entry.revents != 0 {
                answered[entry.fd] = FastCGIClient.readKeptAnswer(entry.fd)?.status ?? 0
                busyServedBy.append(busyServed.withLock { $0 } - before)
            }
        }
        #expect(answered.count == fresh.count && answered.values.allSatisfy { $0 == 200 }, "\(answered.values.filter { $0 != 200 }.count) failed")
        #expect(busyFailures.items.isEmpty)
        // One accept per listener event served a pass of the 32 busy connections per new one:
        // about 4,000 busy requests before the last new one. Accepting all that wait takes a few passes.
        let waited = busyServedBy.max() ?? .max
        print("accept: the busy connections were served \(waited) times until the last of 128 new ones was answered")
        #expect(waited < 32 * 16, "the busy connections were served \(waited) times until the last new one was answered")
    }

    private static func sendAll(_ bytes: [UInt8], to fd: Int32) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            guard count > 0 else { return false }
            sent += count
        }
        return true
    }

    @Test("nginx with its keep-alive pool full of idle connections, then a burst of 5,000 requests: every one answered 2xx")
    func burstOnAFullPool() async throws {
        let stack = try await Stack("keepalive-burst", workers: 2, environment: [
            "MARQUEE_THREADS": "4", "MARQUEE_LOG_LEVEL": "warning", "MARQUEE_FASTCGI_KEEPALIVE": "32",
        ])
        defer { stack.stop() }
        // Requests that take a while, so that nginx opens a connection for each lane at once
        // (fast ones would share a few) and keeps them when they end.
        _ = Self.burst(stack.raw, path: "/api/v1/test/sleep?ms=100", count: 128, lanes: 64)
        try await Task.sleep(for: .milliseconds(300))
        // The pool is idle and full: the workers hold nginx's kept connections, each without a thread.
        let held = try await Self.connectionsHeld(stack)
        #expect(held.values.reduce(0, +) >= 16, "the workers hold \(held) connections; nginx keeps 32")

        let statuses = Self.burst(stack.raw, path: "/api/v1/health", count: 5_000, lanes: 64)
        let failed = statuses.filter { !(200..<300).contains($0) }
        #expect(statuses.count == 5_000)
        #expect(failed.isEmpty, "\(failed.count) of 5,000 answers were not 2xx: \(Set(failed))")
    }

    @Test("bodies the route refuses unread, each followed by another request on the kept connection: every answer is the route's own")
    func refusedBodiesThenNextRequest() async throws {
        let stack = try await Stack("keepalive-refused-body", workers: 1, environment: [
            "MARQUEE_THREADS": "2", "MARQUEE_LOG_LEVEL": "warning", "MARQUEE_FASTCGI_KEEPALIVE": "8",
        ])
        defer { stack.stop() }
        // Over the user routes' 16 KiB, so the route answers 413 from the declared length; small
        // enough that nginx has sent it all when the answer comes, and so keeps the connection
        // and sends its next request on it at once.
        let body = Data(repeating: UInt8(ascii: "a"), count: 100_000)
        let headers = [("Authorization", "Bearer \(Stack.adminToken)"), ("Content-Type", "application/json")]
        let pairs = Collected<(Int, Int)>()
        let taken = Collected<Bool>()
        let lanes = (0..<8).map { _ in
            JoinableThread {
                while taken.appendIfBelow(true, 600) {
                    let refused = (try? stack.raw.send("POST", "/api/v1/users", headerList: headers, body: body, timeout: 10).status) ?? 0
                    let next = (try? stack.raw.send("GET", "/api/v1/health", headerList: [], timeout: 10).status) ?? 0
                    pairs.append((refused, next))
                }
            }
        }
        for lane in lanes { lane.join(timeout: .seconds(300)) }
        let wrong = pairs.items.filter { $0 != (413, 200) }
        #expect(pairs.items.count == 600)
        #expect(wrong.isEmpty, "\(wrong.count) of 600 pairs were not (413, 200): \(wrong.prefix(10))")
    }

    @Test("workers closing kept connections by their idle timeout and bound under nginx: every request still answered 200")
    func closedUnderNginx() async throws {
        let log = TestPaths.temporaryDirectory("keepalive-access").appendingPathComponent("access.log")
        defer { try? FileManager.default.removeItem(at: log.deletingLastPathComponent()) }
        let stack = try await Stack("keepalive-closed", workers: 2, environment: [
            "MARQUEE_THREADS": "4", "MARQUEE_LOG_LEVEL": "warning", "MARQUEE_FASTCGI_KEEPALIVE": "64",
            "MARQUEE_FASTCGI_MAX_CONNECTIONS": "16", "MARQUEE_FASTCGI_IDLE_TIMEOUT": "0.5",
        ], renderArguments: ["--access-log", log.path])
        defer { stack.stop() }
        var statuses: [Int] = []
        for round in 0..<6 {
            // Fill nginx's pool past what the workers keep, then let the idle timeout close them.
            statuses += Self.burst(stack.raw, path: "/api/v1/health", count: 600, lanes: round % 2 == 0 ? 6 : 12)
            try await Task.sleep(for: .milliseconds(700))
            statuses += Self.burst(stack.raw, path: "/api/v1/health", count: 100, lanes: 1)
        }
        let failed = statuses.filter { $0 != 200 }
        #expect(failed.isEmpty, "\(failed.count) of \(statuses.count) answers were not 200: \(Set(failed))")
        let retried = try Self.retriedLines(log)
        print("closed under nginx: \(statuses.count) requests, \(retried.count) retried by nginx on a new connection")
    }

    @Test("kill -9 of a worker with requests in flight on kept connections: nginx retries them on the other worker, and its next requests succeed")
    func killedWorker() async throws {
        let log = TestPaths.temporaryDirectory("keepalive-kill").appendingPathComponent("access.log")
        defer { try? FileManager.default.removeItem(at: log.deletingLastPathComponent()) }
        let stack = try await Stack("keepalive-kill", workers: 1, environment: [
            "MARQUEE_THREADS": "8", "MARQUEE_LOG_LEVEL": "warning", "MARQUEE_FASTCGI_KEEPALIVE": "64",
        ], renderArguments: ["--access-log", log.path])
        defer { stack.stop() }
        // Every connection nginx keeps goes to the first worker; then a second one joins.
        _ = Self.burst(stack.raw, path: "/api/v1/health", count: 400, lanes: 32)
        let held = try await Self.connectionsHeld(stack)
        let worker = try #require(stack.workers.first)
        try #require((held[Int(worker.pid)] ?? 0) >= 8, "the first worker holds \(held) connections")
        try stack.startWorker()

        // Six requests in flight on kept connections to the first worker.
        let sleepers = Collected<Int>()
        let raw = stack.raw
        let lanes = (0..<6).map { _ in
            JoinableThread {
                sleepers.append((try? raw.send("GET", "/api/v1/test/sleep?ms=1500", headerList: []).status) ?? 0)
            }
        }
        try await Task.sleep(for: .milliseconds(500))
        worker.signal(SIGKILL)
        _ = worker.waitForExit(timeout: .seconds(5))
        for lane in lanes { lane.join(timeout: .seconds(30)) }
        let sleeping = sleepers.items
        #expect(sleeping == [200, 200, 200, 200, 200, 200], "the sleeping requests got \(sleeping)")

        let next = Self.burst(stack.raw, path: "/api/v1/health", count: 300, lanes: 8)
        #expect(next.allSatisfy { $0 == 200 }, "after the kill: \(next.filter { $0 != 200 }.count) of 300 failed")
        let retried = try Self.retriedLines(log).filter { $0.contains("/api/v1/test/sleep") }
        #expect(!retried.isEmpty, "no sleeping request shows a second upstream try in the access log")
        #expect(retried.allSatisfy { $0.contains("\"status\":200,") }, "retried: \(retried)")
    }

    @Test("SIGHUP and a rolling SIGTERM of every worker with kept connections: 0 failed requests in a 10 s load run")
    func reloadAndRollingRestart() async throws {
        let wrk = try #require(["/usr/bin/wrk", "/usr/local/bin/wrk"].first { FileManager.default.isExecutableFile(atPath: $0) },
                               "wrk is not installed (deploy/test installs it)")
        let stack = try await Stack("keepalive-rolling", workers: 2, environment: [
            "MARQUEE_THREADS": "4", "MARQUEE_LOG_LEVEL": "warning", "MARQUEE_FASTCGI_KEEPALIVE": "32",
        ])
        defer { stack.stop() }
        let load = try ChildProcess("wrk", executable: wrk,
                                    arguments: ["-t2", "-c32", "-d10s", "--timeout", "5s", "http://127.0.0.1:\(stack.port)/api/v1/health"],
                                    logDirectory: stack.directory)
        defer { load.stop() }
        try await Task.sleep(for: .seconds(1.5))
        for worker in stack.workers { worker.signal(SIGHUP) }
        try await Task.sleep(for: .seconds(1.5))
        let originals = stack.workers
        for worker in originals {
            // A replacement first, as systemd's socket keeps the pool served; then the old one stops.
            try stack.startWorker()
            try await Task.sleep(for: .seconds(1))
            worker.signal(SIGTERM)
            let status = worker.waitForExit(timeout: .seconds(15))
            #expect(status == 0, "worker \(worker.pid) exited \(String(describing: status))")
            try await Task.sleep(for: .seconds(1))
        }
        for worker in stack.workers where worker.isRunning { worker.signal(SIGHUP) }
        let exit = load.waitForExit(timeout: .seconds(30))
        let output = load.log
        try #require(exit == 0, "wrk: \(output)")
        let requests = Self.firstNumber(after: " requests in ", in: output, backwards: true) ?? 0
        let non2xx = Self.firstNumber(after: "Non-2xx or 3xx responses:", in: output) ?? 0
        let socketErrors = output.split(separator: "\n").first { $0.contains("Socket errors:") }
            .map { line in line.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }.reduce(0, +) } ?? 0
        print(output)
        #expect(requests > 1_000, "wrk made only \(requests) requests")
        #expect(non2xx == 0 && socketErrors == 0, "\(non2xx) non-2xx answers and \(socketErrors) socket errors of \(requests)")
    }

    @Test("the record scan: whole requests, heads whose body is arriving, partial and malformed ones")
    func requestFraming() {
        func record(_ type: UInt8, _ content: [UInt8], id: UInt8 = 1) -> [UInt8] {
            [1, type, 0, id, UInt8(content.count >> 8), UInt8(content.count & 0xff), 0, 0] + content
        }
        let begin = record(1, [0, 1, 1, 0, 0, 0, 0, 0])
        let params = record(4, [4, 3] + Array("NAMEval".utf8)) + record(4, [])
        let body = record(5, Array("hello".utf8))
        func scan(_ bytes: [UInt8]) -> RequestFraming { bytes.withUnsafeBytes { RequestFraming.scan($0) } }

        #expect(scan(begin + params + body + record(5, [])) == .complete(keepConnection: true))
        #expect(scan(record(1, [0, 1, 0, 0, 0, 0, 0, 0]) + params + record(5, [])) == .complete(keepConnection: false))
        #expect(scan(begin + params + body) == .headComplete(keepConnection: true))
        #expect(scan(begin + params) == .headComplete(keepConnection: true))
        #expect(scan(Array((begin + params).dropLast(3))) == .incomplete)
        #expect(scan(Array(begin.prefix(12))) == .incomplete)
        #expect(scan([]) == .incomplete)
        #expect(scan(record(4, [])) == .malformed, "no begin record first")
        #expect(scan(record(1, [0, 2, 1, 0, 0, 0, 0, 0]) + params) == .malformed, "not the responder role")
        #expect(scan(begin + record(4, [], id: 2)) == .malformed, "another request id")
        #expect(scan(begin + record(5, [])) == .malformed, "a body before the params ended")
        // A name length near INT_MAX aborts libfcgi; it never reaches it.
        #expect(scan(begin + record(4, [0xff, 0xff, 0xff, 0xf0, 1]) + record(4, [])) == .malformed)
        #expect(scan(begin + record(4, [4]) + record(4, [])) == .malformed, "params ended inside a pair")
    }

    @Test("the connection table: body-reading slots are bounded and handed on, deadlines and the idle timeout close the oldest, stale events are ignored")
    func connectionTable() {
        var table = ConnectionTable()
        let idle = table.adopt(10, now: 1)
        let parked = table.settle(idle, .quiet, now: 1, streamingLimit: 1, stopping: false)
        #expect(parked == .wait(.oneShot(add: true)))
        #expect(table.state(of: idle) == .idle)

        let partial = table.adopt(11, now: 2)
        let partialWaits = table.settle(partial, .framing(.incomplete), now: 2, streamingLimit: 1, stopping: false)
        #expect(partialWaits == .wait(.edge(add: true)))
        let claimedPartial = table.claim(partial)
        #expect(claimedPartial)
        // More bytes, still short: it keeps the deadline of its first byte and stays armed.
        let stillPartial = table.settle(partial, .framing(.incomplete), now: 4, streamingLimit: 1, stopping: false)
        #expect(stillPartial == .wait(nil))

        let streamed = table.adopt(12, now: 3)
        let streamedServed = table.settle(streamed, .framing(.headComplete(keepConnection: true)), now: 3, streamingLimit: 1, stopping: false)
        #expect(streamedServed == .serve)
        let second = table.adopt(13, now: 3)
        let secondWaits = table.settle(second, .framing(.headComplete(keepConnection: true)), now: 3, streamingLimit: 1, stopping: false)
        #expect(secondWaits == .wait(.edge(add: true)), "one body-reading slot only")
        #expect(table.streaming == 1)
        let release = table.release(streamed, .keep, now: 5, stopping: false)
        #expect(release.next == second, "the waiting body gets the slot given back")
        #expect(release.arming == .oneShot(add: true) && !release.close)
        #expect(table.state(of: second) == .checking)
        let secondServed = table.settle(second, .framing(.headComplete(keepConnection: true)), now: 5, streamingLimit: 1, stopping: false)
        #expect(secondServed == .serve)
        let secondReleased = table.release(second, .close, now: 6, stopping: false)
        #expect(secondReleased.close)

        // A stale event: the descriptor's slot has moved on to a new generation.
        let staleClaimed = table.claim(Connection(fd: 12, generation: streamed.generation &+ 100))
        #expect(!staleClaimed)
        #expect(table.idleConnections().map(\.fd) == [10, 12])
        #expect(table.count == 3)

        // The partial one expires 3 after its first byte (2), the idle ones 10 after they went idle (1 and 5).
        let expiredAt4 = table.expire(now: 4, idleTimeout: 10, readDeadline: 3)
        #expect(expiredAt4 == [])
        let expiredAt5 = table.expire(now: 5, idleTimeout: 10, readDeadline: 3)
        #expect(expiredAt5 == [11])
        let expiredAt11 = table.expire(now: 11, idleTimeout: 10, readDeadline: 3)
        #expect(expiredAt11 == [10])
        let expiredAt15 = table.expire(now: 15, idleTimeout: 10, readDeadline: 3)
        #expect(expiredAt15 == [12])
        #expect(table.count == 0)

        // A stopping worker lets go of a kept connection between requests, and gives one it
        // accepted just then the read deadline for its first request.
        let kept = table.adopt(14, now: 20)
        let keptServed = table.settle(kept, .framing(.complete(keepConnection: true)), now: 20, streamingLimit: 1, stopping: false)
        #expect(keptServed == .serve)
        _ = table.release(kept, .keep, now: 21, stopping: false)
        let claimedKept = table.claim(kept)
        #expect(claimedKept)
        let keptAtStop = table.settle(kept, .quiet, now: 22, streamingLimit: 1, stopping: true)
        #expect(keptAtStop == .close)
        let late = table.adopt(15, now: 22)
        let lateAtStop = table.settle(late, .quiet, now: 22, streamingLimit: 1, stopping: true)
        #expect(lateAtStop == .wait(.edge(add: true)))
        let expiredAt25 = table.expire(now: 25, idleTimeout: 10, readDeadline: 3)
        #expect(expiredAt25 == [15])
        #expect(table.count == 0)
    }

    @Test("the connection table: a head waiting for a body-reading slot keeps its place past the read deadline, and is served when the slot frees")
    func waitingHeadNeverExpires() {
        var table = ConnectionTable()
        let reading = table.adopt(20, now: 1)
        #expect(table.settle(reading, .framing(.headComplete(keepConnection: true)), now: 1, streamingLimit: 1, stopping: false) == .serve)
        let queued = table.adopt(21, now: 1)
        #expect(table.settle(queued, .framing(.headComplete(keepConnection: true)), now: 1, streamingLimit: 1, stopping: false) == .wait(.edge(add: true)))
        let partial = table.adopt(22, now: 1)
        #expect(table.settle(partial, .framing(.incomplete), now: 1, streamingLimit: 1, stopping: false) == .wait(.edge(add: true)))

        // Long past the read deadline: the partial head is closed, the queued one is not.
        #expect(table.expire(now: 50, idleTimeout: 100, readDeadline: 3) == [22])
        #expect(table.state(of: queued) == .waiting)
        #expect(table.waitersWithFreeSlots(streamingLimit: 1) == [], "the one slot is held")
        #expect(table.waitersWithFreeSlots(streamingLimit: 2) == [queued])
        let release = table.release(reading, .close, now: 51, stopping: false)
        #expect(release.close && release.next == queued)
        #expect(table.settle(queued, .framing(.headComplete(keepConnection: true)), now: 51, streamingLimit: 1, stopping: false) == .serve)
    }

    // MARK: - Support

    /// How many connections each worker holds, from the status pages of both.
    private static func connectionsHeld(_ stack: Stack) async throws -> [Int: Int] {
        var held: [Int: Int] = [:]
        for _ in 0..<40 where held.count < stack.workers.count {
            if let status = try? await stack.client.get("/api/v1/status").json(), let pid = status["pid"] as? Int,
               let connections = status["connections"] as? Int {
                held[pid] = connections
            }
        }
        return held
    }

    /// `count` GETs of `path` through nginx over `lanes` threads, a connection each; their statuses (0: no answer).
    private static func burst(_ raw: RawHTTP, path: String, count: Int, lanes: Int) -> [Int] {
        let statuses = Collected<Int>()
        let taken = Collected<Bool>()
        let threads = (0..<lanes).map { _ in
            JoinableThread {
                while taken.appendIfBelow(true, count) {
                    statuses.append((try? raw.send("GET", path, headerList: [], timeout: 10).status) ?? 0)
                }
            }
        }
        for thread in threads { thread.join(timeout: .seconds(300)) }
        return statuses.items
    }

    @Test("the site's keep-alive pool follows the sizing rule: half a worker's connections over the nginx workers, 16 to 512, unless set", arguments: [
        (maxConnections: "", nginxWorkers: "2", keepalive: "", expected: 256),
        (maxConnections: "", nginxWorkers: "8", keepalive: "", expected: 64),
        (maxConnections: "4096", nginxWorkers: "2", keepalive: "", expected: 512),
        (maxConnections: "64", nginxWorkers: "4", keepalive: "", expected: 16),
        (maxConnections: "", nginxWorkers: "2", keepalive: "40", expected: 40),
    ])
    func renderedPoolSize(_ example: (maxConnections: String, nginxWorkers: String, keepalive: String, expected: Int)) throws {
        let directory = TestPaths.temporaryDirectory("keepalive-render")
        defer { try? FileManager.default.removeItem(at: directory) }
        let secret = directory.appendingPathComponent("secret")
        try "render-only-secret-0123456789\n".write(to: secret, atomically: true, encoding: .utf8)
        let out = directory.appendingPathComponent("out")
        let render = try ChildProcess("render", executable: "/bin/bash", arguments: [
            TestPaths.script("deploy/nginx-render"), "--out", out.path, "--secure-link-secret-file", secret.path,
            "--nginx-workers", example.nginxWorkers, "--no-check",
        ], environment: ["MARQUEE_FASTCGI_MAX_CONNECTIONS": example.maxConnections, "MARQUEE_FASTCGI_KEEPALIVE": example.keepalive],
           logDirectory: directory)
        try #require(render.waitForExit(timeout: .seconds(30)) == 0, "nginx-render failed: \(render.log)")
        let site = try String(contentsOf: out.appendingPathComponent("marquee.conf"), encoding: .utf8)
        let pools = site.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { $0.hasPrefix("keepalive ") }
        #expect(pools == ["keepalive \(example.expected);"], "\(example)")
    }

    /// The access lines (nginx's JSON `marquee` format) of requests nginx sent to more than one
    /// upstream connection: their upstream_time lists one time per try.
    private static func retriedLines(_ log: URL) throws -> [String] {
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").map(String.init).filter { line in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let upstreamTime = object["upstream_time"] as? String else { return false }
            return upstreamTime.contains(", ")
        }
    }

    private static func firstNumber(after marker: String, in text: String, backwards: Bool = false) -> Int? {
        guard let range = text.range(of: marker) else { return nil }
        if backwards {
            return text[..<range.lowerBound].split(separator: " ").last.flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        }
        return text[range.upperBound...].split(separator: "\n").first.flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
    }

    /// Raises this process's soft limit on open files to `needed`, within the hard limit.
    private static func ensureOpenFiles(_ needed: Int) throws {
        var files = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &files)
        if files.rlim_cur < rlim_t(needed) {
            files.rlim_cur = min(files.rlim_max, rlim_t(needed))
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &files)
            getrlimit(Int32(RLIMIT_NOFILE.rawValue), &files)
        }
        try #require(files.rlim_cur >= rlim_t(needed), "open files limited to \(files.rlim_cur); the test needs \(needed)")
    }

    private static func connect(_ path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw StackError("socket: errno \(errno)") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8.prefix($0.count - 1)) + [0]) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            throw StackError("connect \(path): errno \(errno)")
        }
        return fd
    }

    /// Waits until the worker closed each of `fds` (end of file or a reset); when each was seen closed.
    private static func waitForEndOfFile(_ fds: [Int32], within timeout: Duration) -> [Int32: ContinuousClock.Instant] {
        var closedAt: [Int32: ContinuousClock.Instant] = [:]
        var open = fds
        let deadline = ContinuousClock.now + timeout
        var byte: UInt8 = 0
        while !open.isEmpty && ContinuousClock.now < deadline {
            var polled = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            guard poll(&polled, nfds_t(polled.count), 100) > 0 else { continue }
            let now = ContinuousClock.now
            for entry in polled where entry.revents != 0 {
                let count = recv(entry.fd, &byte, 1, Int32(MSG_DONTWAIT))
                if count == 0 || (count < 0 && errno != EAGAIN && errno != EWOULDBLOCK) { closedAt[entry.fd] = now }
            }
            open.removeAll { closedAt[$0] != nil }
        }
        return closedAt
    }
}

/// Health through nginx, one request after another on a thread of its own, each timed.
private final class LatencyProbe: Sendable {
    struct Answer: Sendable {
        var status: Int
        var elapsed: Duration
    }

    private let answers = Collected<Answer>()
    private let stopped = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)

    init(raw: RawHTTP) {
        Thread { [self] in
            while !stopped.load(ordering: .relaxed) {
                let start = ContinuousClock.now
                let status = (try? raw.send("GET", "/api/v1/health", headerList: [], timeout: 10).status) ?? 0
                answers.append(Answer(status: status, elapsed: ContinuousClock.now - start))
                Thread.sleep(forTimeInterval: 0.02)
            }
            finished.signal()
        }.start()
    }

    /// Stops probing once the request under way answered; every answer.
    @discardableResult
    func stop() -> [Answer] {
        if !stopped.exchange(true, ordering: .relaxed) { _ = finished.wait(timeout: .now() + 15) }
        return answers.items
    }
}

/// Items appended from several threads.
final class Collected<Item: Sendable>: Sendable {
    private let storage = Mutex<[Item]>([])

    var items: [Item] { storage.withLock { $0 } }

    func append(_ item: Item) {
        storage.withLock { $0.append(item) }
    }

    /// Appends unless `limit` items are there already; whether it did.
    func appendIfBelow(_ item: Item, _ limit: Int) -> Bool {
        storage.withLock { items in
            guard items.count < limit else { return false }
            items.append(item)
            return true
        }
    }
}

/// A thread running `body` at once, to `join` later.
final class JoinableThread: Sendable {
    private let done = DispatchSemaphore(value: 0)

    init(_ body: @escaping @Sendable () -> Void) {
        Thread { [done] in
            body()
            done.signal()
        }.start()
    }

    func join(timeout: Duration) {
        _ = done.wait(timeout: .now() + .milliseconds(Int(timeout.components.seconds * 1000)))
    }
}
