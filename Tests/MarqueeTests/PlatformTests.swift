import Foundation
import Testing

/// The platform through a real nginx and real workers: routing, errors, limits and lifecycle.
@Suite("Platform", .serialized)
struct PlatformTests {
    @Test("health, unknown routes, wrong methods and the body limit answer JSON through nginx")
    func routingAndErrors() async throws {
        let stack = try await Stack("routing", workers: 2, environment: ["MARQUEE_MAX_BODY_BYTES": "1024"])
        defer { stack.stop() }

        let health = try await stack.client.get("/api/v1/health")
        #expect(health.status == 200)
        #expect(health.header("Content-Type") == "application/json")
        #expect(health.json()?["status"] as? String == "ok")

        let unknown = try await stack.client.get("/api/v1/no-such-route")
        #expect(unknown.status == 404)
        #expect(unknown.errorCode == "not_found")

        let wrongMethod = try await stack.client.request("DELETE", "/api/v1/health")
        #expect(wrongMethod.status == 405)
        #expect(wrongMethod.errorCode == "method_not_allowed")
        #expect(wrongMethod.header("Allow") == "GET")

        let small = try await stack.client.request("POST", "/api/v1/test/echo", body: Data(repeating: 65, count: 1000))
        #expect(small.status == 200)
        #expect(small.json()?["bytes"] as? Int == 1000)

        let large = try await stack.client.request("POST", "/api/v1/test/echo", body: Data(repeating: 65, count: 4096))
        #expect(large.status == 413)
        #expect(large.errorCode == "payload_too_large")
        #expect(large.header("Content-Type") == "application/json")
    }

    @Test("answers of every size reach the client whole: empty, one record, and several 64 KiB records")
    func responseFraming() async throws {
        let stack = try await Stack("framing", workers: 2)
        defer { stack.stop() }
        for count in [0, 1, 8_191, 65_535, 65_536, 300_001] {
            let answer = try await stack.client.get("/api/v1/test/bytes?n=\(count)")
            #expect(answer.status == 200)
            #expect(answer.header("Content-Length") == "\(count)" || answer.header("Transfer-Encoding") != nil)
            #expect(answer.body == Data((0..<count).map { UInt8(truncatingIfNeeded: $0 % 251) }), "\(count) bytes")
        }
        // The connection handling after a large answer is intact: the next request is served.
        #expect(try await stack.client.get("/api/v1/health").status == 200)
    }

    @Test("query strings are decoded and each request is logged as one JSON line")
    func queryAndLogging() async throws {
        let stack = try await Stack("logging", workers: 1)
        defer { stack.stop() }
        let slept = try await stack.client.get("/api/v1/test/sleep?ms=%31%30&unused=a+b")
        #expect(slept.json()?["slept"] as? Int == 10)

        // Request threads flush their log lines when they go idle, just after answering.
        var request: [String: Any]?
        for _ in 0..<100 where request == nil {
            let lines = stack.workers[0].log.split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
            request = lines.last { $0["msg"] as? String == "request" && $0["route"] as? String == "/api/v1/test/sleep" }
            if request == nil { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(request?["method"] as? String == "GET")
        #expect(request?["status"] as? Int == 200)
        #expect((request?["us"] as? Int ?? 0) >= 10_000)
        #expect(request?["pid"] as? Int == Int(stack.workers[0].pid))
    }

    @Test("a burst past a route's limit gets 429 JSON from nginx")
    func rateLimit() async throws {
        let stack = try await Stack("ratelimit", workers: 2, rates: "default")
        defer { stack.stop() }
        let statuses = await withTaskGroup(of: (Int, String?).self) { group in
            for _ in 0..<300 {
                group.addTask {
                    guard let answer = try? await stack.client.get("/api/v1/health") else { return (0, nil) }
                    return (answer.status, answer.status == 429 ? answer.errorCode : nil)
                }
            }
            var results: [(Int, String?)] = []
            for await result in group { results.append(result) }
            return results
        }
        let limited = statuses.filter { $0.0 == 429 }
        #expect(!limited.isEmpty, "300 simultaneous requests should pass the health route's burst")
        #expect(limited.allSatisfy { $0.1 == "rate_limited" })
        #expect(statuses.allSatisfy { $0.0 == 200 || $0.0 == 429 })
    }

    @Test("kill -9 of one of two workers: the other keeps answering, a restarted one serves")
    func killOneWorker() async throws {
        let stack = try await Stack("kill9", workers: 2)
        defer { stack.stop() }
        let victim = stack.workers[0]
        let survivor = stack.workers[1]

        let counts = LoadCounter()
        let load = counts.run { await stack.client.status("/api/v1/health") }
        try await Task.sleep(for: .milliseconds(500))
        victim.signal(SIGKILL)
        #expect(victim.waitForExit(timeout: .seconds(5)) != nil)
        let beforeKill = counts.snapshot()
        try await Task.sleep(for: .seconds(1))
        let replacement = try stack.startWorker()
        try await Task.sleep(for: .seconds(1))
        await counts.finish(load)
        let total = counts.snapshot()

        #expect(total.ok - beforeKill.ok > 20, "the survivor kept answering after the kill")
        // Only requests the victim had in flight may fail; the socket itself never went away.
        #expect(total.failed <= 4, "failed: \(total.failed) of \(total.ok + total.failed)")

        // With the survivor stopped, only the restarted worker is left to answer.
        survivor.stop()
        #expect(survivor.waitForExit(timeout: .seconds(10)) == 0)
        let pid = await stack.answeringPid()
        #expect(pid == Int(replacement.pid))
    }

    @Test("SIGTERM during a slow request: the request completes and the worker exits 0")
    func drainOnSigterm() async throws {
        let stack = try await Stack("drain", workers: 1)
        defer { stack.stop() }
        let worker = stack.workers[0]
        let slow = Task { try await stack.client.get("/api/v1/test/sleep?ms=1500") }
        try await Task.sleep(for: .milliseconds(400))
        worker.signal(SIGTERM)
        let answer = try await slow.value
        #expect(answer.status == 200)
        #expect(answer.json()?["slept"] as? Int == 1500)
        #expect(worker.waitForExit(timeout: .seconds(10)) == 0)
        #expect(worker.log.contains("\"msg\":\"stopped\""))
    }

    @Test("SIGHUP reloads the env file under load without a failed request")
    func reloadUnderLoad() async throws {
        let directory = TestPaths.temporaryDirectory("envfile")
        defer { try? FileManager.default.removeItem(at: directory) }
        let envFile = directory.appendingPathComponent("marquee.env")
        try "MARQUEE_MAX_BODY_BYTES=1000\n".write(to: envFile, atomically: true, encoding: .utf8)
        let stack = try await Stack("reload", workers: 2, environment: ["MARQUEE_ENV_FILE": envFile.path])
        defer { stack.stop() }

        let before = try await stack.client.request("POST", "/api/v1/test/echo", body: Data(count: 1500))
        #expect(before.status == 413)

        let counts = LoadCounter()
        let load = counts.run { await stack.client.status("/api/v1/health") }
        try "# raised by the operator\nMARQUEE_MAX_BODY_BYTES=2000\n".write(to: envFile, atomically: true, encoding: .utf8)
        for worker in stack.workers { worker.signal(SIGHUP) }
        try await Task.sleep(for: .seconds(1))
        await counts.finish(load)

        let total = counts.snapshot()
        #expect(total.failed == 0)
        #expect(total.ok > 10)
        for _ in 0..<6 {
            let after = try await stack.client.request("POST", "/api/v1/test/echo", body: Data(count: 1500))
            #expect(after.status == 200)
        }
        let status = try await stack.client.get("/api/v1/status")
        let config = status.json()?["config"] as? [String: Any]
        #expect(config?["generation"] as? Int == 2)
        #expect(config?["maxBodyBytes"] as? Int == 2000)
    }

    @Test("a bad setting stops the worker with one line naming the variable, and no secret")
    func badConfiguration() throws {
        let directory = TestPaths.temporaryDirectory("badconfig")
        defer { try? FileManager.default.removeItem(at: directory) }
        let worker = try ChildProcess(
            "bad", executable: TestPaths.marquee, arguments: ["serve", "--listen", directory.appendingPathComponent("s.sock").path],
            environment: ["MARQUEE_THREADS": "lots", "MARQUEE_ADMIN_TOKEN": "secret-value-that-must-not-leak"],
            logDirectory: directory
        )
        #expect(worker.waitForExit(timeout: .seconds(10)) == 78)
        let output = worker.log.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(output == "marquee: invalid MARQUEE_THREADS: expected a whole number from 1 to 256, got 'lots'")
        #expect(!output.contains("secret-value"))
    }
}

/// Counts the answers of a bounded load loop. The loop is stopped by a flag, not by
/// cancelling its task: a cancelled request would count as a failure the server never made.
final class LoadCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var ok = 0
    private var failed = 0
    private var stopped = false

    func run(limit: Int = 100_000, _ request: @escaping @Sendable () async -> Int) -> Task<Void, Never> {
        Task {
            for _ in 0..<limit where !isStopped {
                record(await request())
            }
        }
    }

    func finish(_ load: Task<Void, Never>) async {
        lock.withLock { stopped = true }
        await load.value
    }

    private var isStopped: Bool { lock.withLock { stopped } }

    func record(_ status: Int) {
        lock.lock()
        defer { lock.unlock() }
        if (200..<300).contains(status) { ok += 1 } else { failed += 1 }
    }

    func snapshot() -> (ok: Int, failed: Int) {
        lock.lock()
        defer { lock.unlock() }
        return (ok, failed)
    }
}
