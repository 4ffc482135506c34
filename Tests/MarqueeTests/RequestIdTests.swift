import Foundation
@testable import Marquee
import Testing

/// One id per request across nginx's access log, the workers' log lines (those about the
/// request's upstream calls included) and the X-Request-Id answer header.
@Suite("Request ids", .serialized)
struct RequestIdTests {
    @Test("the workers' check of an id is nginx's map pattern ^[A-Za-z0-9._-]{1,64}$", arguments: [
        ("a", true), ("client-chosen.id_01", true), (String(repeating: "x", count: 64), true),
        ("", false), (String(repeating: "x", count: 65), false), ("has space", false), ("semi;colon", false),
        ("quote\"", false), ("slash/", false), ("new\nline", false), ("é", false), ("a+b", false),
    ])
    func workerPattern(id: String, safe: Bool) {
        #expect(Request.isSafeRequestId(id) == safe)
    }

    @Test("a client's safe X-Request-Id is on nginx's access line, the worker's line and the answer; an unsafe one is replaced by nginx's own everywhere")
    func endToEnd() async throws {
        let logs = TestPaths.temporaryDirectory("request-id-logs")
        defer { try? FileManager.default.removeItem(at: logs) }
        let accessLog = logs.appendingPathComponent("access.log")
        let stack = try await Stack("request-id", workers: 2, environment: ["MARQUEE_INTERNAL_NETWORKS": "127.0.0.1"],
                                    renderArguments: ["--access-log", accessLog.path])
        defer { stack.stop() }

        let tag = UUID().uuidString.prefix(8).lowercased()
        let safe = ["client-\(tag).trace_1", "c" + String(repeating: "9", count: 55) + tag]
        for id in safe {
            let answer = try await stack.client.get("/api/v1/health", headers: ["X-Request-Id": id])
            #expect(answer.status == 200)
            #expect(answer.header("X-Request-Id") == id)
            try await Self.expectLogged(id, status: 200, uri: "/api/v1/health", stack: stack, accessLog: accessLog, worker: true)
        }
        // nginx's own answer (403 from outside the internal networks) keeps the client's id too.
        let refused = "refused-\(tag)"
        let forbidden = try stack.raw.send("GET", "/api/v1/status", headers: ["X-Request-Id": refused], from: "127.0.0.2")
        #expect(forbidden.status == 403)
        #expect(forbidden.header("X-Request-Id") == refused)
        try await Self.expectLogged(refused, status: 403, uri: "/api/v1/status", stack: stack, accessLog: accessLog, worker: false)

        let unsafe = ["has space \(tag)", String(repeating: "u", count: 57) + tag, "semi;\(tag)", "quote\"\(tag)", "{\"json\":\"\(tag)\"}"]
        for id in unsafe {
            let answer = try stack.raw.send("GET", "/api/v1/health", headers: ["X-Request-Id": id])
            #expect(answer.status == 200)
            let replaced = try #require(answer.header("X-Request-Id"))
            #expect(replaced.count == 32 && replaced.allSatisfy(\.isHexDigit), "\(id) -> \(replaced)")
            try await Self.expectLogged(replaced, status: 200, uri: "/api/v1/health", stack: stack, accessLog: accessLog, worker: true)
        }
        let everything = (try String(contentsOf: accessLog, encoding: .utf8)) + stack.workers.map(\.log).joined()
        for id in unsafe {
            #expect(!everything.contains(id), "an unsafe id reached a log: \(id)")
        }
    }

    @Test("every worker line about a request's upstream calls carries the request's id")
    func upstreamLines() async throws {
        let fake = try FakeUpstream()
        defer { fake.stop() }
        let stack = try await Stack("request-id-upstream", workers: 1,
                                    environment: TrailersFixtures.environment(fake, ["MARQUEE_LOG_LEVEL": "debug"]))
        defer { stack.stop() }
        let failing = TrailersFixtures.add(fake, slug: "tmdb-fails-for-request-id", imdbId: "tt0000451", tmdbId: 451)
        fake.set(failing.paths[1], .status(500, Array(#"{"status_message":"down"}"#.utf8)))
        let found = TrailersFixtures.add(fake, slug: "found-for-request-id", imdbId: "tt0000452", tmdbId: 452)

        let failedId = "failing-lookup-\(UUID().uuidString.prefix(8))"
        let failed = try await stack.client.get(TrailersFixtures.path(failing.url), headers: ["X-Request-Id": failedId])
        #expect(failed.status == 502)
        #expect(failed.header("X-Request-Id") == failedId)
        let foundId = "found-lookup-\(UUID().uuidString.prefix(8))"
        let ok = try await stack.client.get(TrailersFixtures.path(found.url), headers: ["X-Request-Id": foundId])
        #expect(ok.status == 200)

        var lines: [[String: Any]] = []
        _ = try await eventually(within: .seconds(10)) {
            lines = Self.workerLines(stack)
            return lines.contains { $0["request_id"] as? String == foundId && $0["msg"] as? String == "request" }
        }
        let failedLines = lines.filter { $0["request_id"] as? String == failedId }
        let messages = failedLines.compactMap { $0["msg"] as? String }
        // The Viaplay call, then TMDB's find twice (one retry after a 5xx), then the chain's failure.
        #expect(messages.filter { $0 == "upstream call" }.count == 1, "\(messages)")
        #expect(messages.filter { $0 == "upstream call failed" }.count == 2, "\(messages)")
        #expect(messages.contains("trailer lookup failed"))
        #expect(messages.last == "request")
        let failedCalls = failedLines.filter { $0["msg"] as? String == "upstream call failed" }
        #expect(failedCalls.allSatisfy { $0["upstream"] as? String == "tmdb" && $0["status"] as? Int == 500 && $0["level"] as? String == "warning" })
        // No line about a call lacks an id while a request was making it.
        let callLines = lines.filter { ($0["msg"] as? String)?.hasPrefix("upstream call") == true && $0["path"] as? String != "/films"
            && $0["path"] as? String != "/people" }
        #expect(callLines.count == 6, "\(callLines)")
        #expect(callLines.allSatisfy { [failedId, foundId].contains($0["request_id"] as? String ?? "") })
        #expect(!stack.workers[0].log.contains("0123456789abcdef0123456789abcdef"), "TMDB's api_key reached the log")
    }

    static func workerLines(_ stack: Stack) -> [[String: Any]] {
        stack.workers.flatMap { $0.log.split(separator: "\n") }.compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    /// Waits for `id` on nginx's access line (with `status` and `uri`) and, when `worker`, on the
    /// worker's request line.
    static func expectLogged(_ id: String, status: Int, uri: String, stack: Stack, accessLog: URL, worker: Bool,
                             sourceLocation: SourceLocation = #_sourceLocation) async throws {
        var access: [String: Any]?
        var request: [String: Any]?
        _ = try await eventually(within: .seconds(10)) {
            let text = (try? String(contentsOf: accessLog, encoding: .utf8)) ?? ""
            access = text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
                .first { $0["request_id"] as? String == id }
            request = workerLines(stack).first { $0["request_id"] as? String == id && $0["msg"] as? String == "request" }
            return access != nil && (request != nil || !worker)
        }
        let line = try #require(access, "no access line with request_id \(id)", sourceLocation: sourceLocation)
        #expect(line["status"] as? Int == status, sourceLocation: sourceLocation)
        #expect(line["uri"] as? String == uri, sourceLocation: sourceLocation)
        #expect(line["method"] as? String == "GET", sourceLocation: sourceLocation)
        if worker {
            #expect(request?["status"] as? Int == status, "no worker line with request_id \(id)", sourceLocation: sourceLocation)
        } else {
            #expect(request == nil, sourceLocation: sourceLocation)
        }
    }
}
