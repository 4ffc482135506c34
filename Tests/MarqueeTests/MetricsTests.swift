import CoreMetrics
import Foundation
import Marquee
import SharedMetrics
import Testing

/// The pool-wide metrics through the project's nginx and real workers: what /metrics
/// counts against what a client sent, across a kill -9 and a restart; its format checked by
/// Debian's promtool; who may read it; `marquee top`; and the switch that turns it off.
@Suite("Metrics", .serialized)
struct MetricsTests {
    struct Kind: Hashable {
        var method: String
        var path: String
        var family: String
        var status: Int
    }

    /// What the load sends: several families, methods and status classes.
    static let kinds = [
        Kind(method: "GET", path: "/api/v1/health", family: "health", status: 200),
        Kind(method: "POST", path: "/api/v1/health", family: "health", status: 405),
        Kind(method: "GET", path: "/api/v1/no-such-route", family: "other", status: 404),
        Kind(method: "GET", path: "/api/v1/users", family: "users", status: 401),
        Kind(method: "GET", path: "/getallusers", family: "legacy", status: 200),
        Kind(method: "GET", path: "/api/v1/trailers", family: "trailers", status: 400),
    ]

    static func statusClass(_ status: Int) -> String { "\(status / 100)xx" }

    /// One scrape through nginx, parsed with the same reader the worker wrote with.
    static func scrape(_ stack: Stack) async throws -> (text: String, counters: [String: Double], counts: [String: Double]) {
        let answer = try await stack.client.get("/metrics")
        guard answer.status == 200 else { throw StackError("/metrics answered \(answer.status): \(answer.text)") }
        #expect(answer.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8")
        var counters: [String: Double] = [:]
        var counts: [String: Double] = [:]
        for line in answer.text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            let series = String(line[..<space])
            if series.hasPrefix("marquee_http_requests_total{") { counters[series] = value }
            if series.hasPrefix("marquee_http_request_duration_seconds_count{") { counts[series] = value }
        }
        return (answer.text, counters, counts)
    }

    static func key(_ family: String, _ method: String, _ status: String) -> String {
        "marquee_http_requests_total{family=\"\(family)\",method=\"\(method)\",status=\"\(status)\"}"
    }

    /// Sends `perKind` of every kind, `concurrency` at a time; answers the statuses seen per kind.
    static func load(_ stack: Stack, perKind: Int, concurrency: Int = 12) async -> [Kind: [Int: Int]] {
        let work = (0..<perKind).flatMap { _ in kinds }
        var seen: [Kind: [Int: Int]] = [:]
        await withTaskGroup(of: (Kind, Int).self) { group in
            var next = 0
            func add() {
                guard next < work.count else { return }
                let kind = work[next]
                next += 1
                group.addTask {
                    let status = (try? await stack.client.request(kind.method, kind.path).status) ?? 0
                    return (kind, status)
                }
            }
            for _ in 0..<concurrency { add() }
            while let (kind, status) = await group.next() {
                seen[kind, default: [:]][status, default: 0] += 1
                add()
            }
        }
        return seen
    }

    @Test("load across 2 workers with a kill -9 mid-way: the pool's counters and histogram counts equal the answers the workers gave")
    func countsSurviveKill() async throws {
        let stack = try await Stack("metrics-kill", workers: 2, environment: ["MARQUEE_LEGACY_USERS": "open"])
        defer { stack.stop() }
        let metricsDirectory = stack.workerEnvironment["MARQUEE_STORE_DIR"]! + "/metrics"
        let before = try await Self.scrape(stack)

        var seen = await Self.load(stack, perKind: 60)
        // kill -9 while requests are in flight: what the dying worker had answered is in its
        // file already; a request it was answering gets nginx's 502, which no worker counted.
        let victim = stack.workers[0]
        async let during = Self.load(stack, perKind: 60)
        try await Task.sleep(for: .milliseconds(150))
        victim.signal(SIGKILL)
        #expect(victim.waitForExit(timeout: .seconds(10)) != nil)
        for (kind, statuses) in await during { for (status, n) in statuses { seen[kind, default: [:]][status, default: 0] += n } }
        try stack.startWorker()
        #expect(try await eventually(within: .seconds(20)) { PoolMetrics.read(directory: metricsDirectory).processes.count == 2 })
        for (kind, statuses) in await Self.load(stack, perKind: 60) {
            for (status, n) in statuses { seen[kind, default: [:]][status, default: 0] += n }
        }

        let after = try await Self.scrape(stack)
        let refusedByNginx = seen.values.reduce(0) { $0 + ($1[502] ?? 0) }
        #expect(refusedByNginx <= 12, "more 502s than requests in flight at the kill: \(seen)")
        var expected: [String: Int] = [:]
        for (kind, statuses) in seen {
            let other = statuses.filter { $0.key != kind.status && $0.key != 502 }
            #expect(other.isEmpty, "\(kind.method) \(kind.path) answered \(statuses)")
            expected[Self.key(kind.family, kind.method, Self.statusClass(kind.status)), default: 0] += statuses[kind.status] ?? 0
        }
        var countedPerFamily: [String: Double] = [:]
        for (series, sent) in expected {
            let counted = (after.counters[series] ?? 0) - (before.counters[series] ?? 0)
            // Exact but for a request the killed worker had counted and not yet written when it
            // died: nginx answered that one 502. Nothing may be lost, nothing doubled.
            #expect(counted >= Double(sent) && counted <= Double(sent + refusedByNginx), "\(series): sent \(sent), counted \(counted)")
            countedPerFamily[String(series.split(separator: "\"")[1]), default: 0] += counted
        }
        for (family, counted) in countedPerFamily {
            let series = "marquee_http_request_duration_seconds_count{family=\"\(family)\"}"
            let observed = (after.counts[series] ?? 0) - (before.counts[series] ?? 0)
            #expect(observed == counted, "\(family): histogram count \(observed), requests \(counted)")
        }
        // The restarted worker took the dead one's file: no file more, and one restart counted.
        let pool = PoolMetrics.read(directory: metricsDirectory)
        #expect(pool.slotFiles == 2)
        #expect(pool.counters(named: "marquee_worker_restarts_total").map(\.value).reduce(0, +) == 1)
        #expect(after.text.contains("process_resident_memory_bytes{pid=\"\(stack.workers[2].pid)\"}"))
        #expect(!after.text.contains("{pid=\"\(victim.pid)\"}"), "a dead worker's gauges are still shown")
        try Self.promtool(after.text)
    }

    /// Debian's promtool lints the page (names, types, HELP, histogram shape).
    static func promtool(_ page: String) throws {
        let path = "/usr/bin/promtool"
        guard FileManager.default.isExecutableFile(atPath: path) else {
            Issue.record("promtool is missing: install Debian's prometheus package (deploy/test does)")
            return
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = ["check", "metrics"]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = output
        try process.run()
        input.fileHandleForWriting.write(Data(page.utf8))
        try input.fileHandleForWriting.close()
        let said = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "promtool check metrics: \(said)")
    }

    @Test("/metrics answers the internal networks only: nginx and the worker refuse others, every spelling")
    func internalOnly() async throws {
        let stack = try await Stack("metrics-access", workers: 1, environment: ["MARQUEE_INTERNAL_NETWORKS": "127.0.0.1"])
        defer { stack.stop() }
        #expect(try stack.raw.send("GET", "/metrics", from: "127.0.0.1").status == 200)
        let plain = try stack.raw.send("GET", "/metrics", from: "127.0.0.2")
        #expect(plain.status == 403 && plain.errorCode == "forbidden", "\(plain.status) \(plain.text)")
        for variant in PathVariants.of("/metrics") {
            let answer = try stack.raw.send("GET", variant.target, from: "127.0.0.2")
            #expect([403, 404, 400].contains(answer.status) && !answer.text.contains("marquee_"),
                    "\(variant.name) \(variant.target): \(answer.status)")
        }
        func send(remote: String) throws -> HTTPAnswer {
            try FastCGIClient.send(socket: stack.socketPath, params: [
                ("REQUEST_METHOD", "GET"), ("DOCUMENT_URI", "/metrics"), ("REQUEST_URI", "/metrics"), ("QUERY_STRING", ""),
                ("REMOTE_ADDR", remote), ("SERVER_PROTOCOL", "HTTP/1.1"), ("CONTENT_LENGTH", "0"),
            ])
        }
        for remote in ["203.0.113.9", "127.0.0.2", "10.1.2.3", "2001:db8::9", "not an address", ""] {
            let answer = try send(remote: remote)
            #expect(answer.status == 403 && answer.errorCode == "forbidden", "from '\(remote)': \(answer.status) \(answer.text)")
        }
        let inside = try send(remote: "127.0.0.1")
        #expect(inside.status == 200 && inside.text.contains("# TYPE marquee_http_requests_total counter"))
    }

    @Test("marquee top prints the pool's rate, percentiles and errors per family from the shared files")
    func top() async throws {
        let stack = try await Stack("metrics-top", workers: 2)
        defer { stack.stop() }
        let storeDirectory = stack.workerEnvironment["MARQUEE_STORE_DIR"]!
        let top = try ChildProcess("top", executable: TestPaths.marquee,
                                   arguments: ["top", "--store-dir", storeDirectory, "--count", "2", "--interval", "1"],
                                   environment: [:], logDirectory: stack.directory)
        defer { top.stop() }
        let deadline = ContinuousClock.now + .seconds(2.5)
        var sent = 0
        while ContinuousClock.now < deadline {
            for kind in Self.kinds.prefix(3) { _ = try? await stack.client.request(kind.method, kind.path); sent += 1 }
        }
        #expect(top.waitForExit(timeout: .seconds(20)) == 0, "\(top.log)")
        let screens = top.log.components(separatedBy: "marquee top:").dropFirst()
        #expect(screens.count == 2, "\(top.log)")
        let last = screens.last ?? ""
        #expect(last.contains("2 live workers"), "\(last)")
        let rows = Dictionary(last.split(separator: "\n").dropFirst(2).map { line in
            let fields = line.split(separator: " ").map(String.init)
            return (fields.first ?? "", fields)
        }, uniquingKeysWith: { first, _ in first })
        let health = try #require(rows["health"], "\(last)")
        // FAMILY REQ/S P50 P90 P99 4XX/S 5XX/S
        #expect((Double(health[1]) ?? 0) > 1, "\(last)")
        #expect(health[2] != "-" && health[4] != "-", "\(last)")
        #expect((Double(health[5]) ?? 0) > 0, "the 405s of POST /api/v1/health: \(last)")
        let other = try #require(rows["other"], "\(last)")
        #expect((Double(other[5]) ?? 0) > 0, "the 404s: \(last)")
        #expect(sent > 3)
    }

    @Test("MARQUEE_METRICS=off: no metrics files, /metrics answers 404")
    func off() async throws {
        let stack = try await Stack("metrics-off", workers: 1, environment: ["MARQUEE_METRICS": "off"])
        defer { stack.stop() }
        let answer = try await stack.client.get("/metrics")
        #expect(answer.status == 404 && answer.errorCode == "not_found", "\(answer.status) \(answer.text)")
        let directory = stack.workerEnvironment["MARQUEE_STORE_DIR"]! + "/metrics"
        #expect(!FileManager.default.fileExists(atPath: directory))
    }

    @Test("every route pattern falls in its family; unmatched requests are other")
    func families() {
        let expected: [String: RouteFamily] = [
            "/api/v1/health": .health, "/api/v1/status": .status, "/metrics": .metrics,
            "/api/v1/trailers": .trailers, "/api/v1/trailer/": .trailers, "/api/v1/content-events": .trailers,
            "/movies": .movies, "/movies/": .movies, "/api/v1/movies": .movies,
            "/api/v1/users": .users, "/api/v1/users/{id}/streams/{stream}": .users,
            "/api/v1/videos/{videoId}": .videos, "/api/v1/tokens/verify": .videos,
            "/api/trailer": .legacy, "/video/{videoId}": .legacy, "/video/token": .legacy, "/getuser": .legacy, "/": .legacy,
            "/api/v1/test/sleep": .other, "unmatched": .other,
        ]
        for (route, family) in expected { #expect(RouteFamily(route: route) == family, "\(route)") }
    }

    @Test("a slot file: two holders in one process get two slots; a released slot is taken again and keeps its counts")
    func slots() throws {
        let directory = TestPaths.temporaryDirectory("metrics-slots").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var first = try SharedMetricsFactory(directory: directory, slotLimit: 2)
        #expect(first != nil)
        let second = try #require(try SharedMetricsFactory(directory: directory, slotLimit: 2))
        #expect(first!.path != second.path)
        #expect(try SharedMetricsFactory(directory: directory, slotLimit: 2) == nil)
        Counter(label: "jobs", dimensions: [("kind", "a")], factory: first!).increment(by: 3)
        Counter(label: "jobs", dimensions: [("kind", "a")], factory: second).increment(by: 4)
        Meter(label: "busy", factory: first!).set(5)
        let timer = CoreMetrics.Timer(label: "work", factory: second)
        for nanoseconds in [40_000, 90_000, 900_000, 20_000_000, 9_000_000_000] as [Int64] { timer.recordNanoseconds(nanoseconds) }
        var pool = PoolMetrics.read(directory: directory)
        #expect(pool.counters["jobs_total{kind=\"a\"}"] == 7)
        #expect(pool.gauges["busy{pid=\"\(getpid())\"}"] == 5)
        let work = try #require(pool.histograms["work_seconds"])
        #expect(work.count == 5 && work.counts.last == 1)
        #expect(abs(work.sum - 9.02103) < 1e-9)
        #expect(try #require(work.quantile(0.5)) > 0.0005 && work.quantile(0.5)! <= 0.001)

        let firstPath = first!.path
        first = nil
        pool = PoolMetrics.read(directory: directory)
        #expect(pool.processes.count == 1)
        #expect(pool.counters["jobs_total{kind=\"a\"}"] == 7, "a released slot's counts stay")
        #expect(pool.gauges.isEmpty, "a released slot's gauges are not shown")
        let third = try #require(try SharedMetricsFactory(directory: directory, slotLimit: 2))
        #expect(third.path == firstPath)
        Counter(label: "jobs", dimensions: [("kind", "a")], factory: third).increment()
        #expect(PoolMetrics.read(directory: directory).counters["jobs_total{kind=\"a\"}"] == 8)
        #expect(PoolMetrics.read(directory: directory).gauges["busy{pid=\"\(getpid())\"}"] == 0, "the new holder starts its gauges at 0")
    }
}
