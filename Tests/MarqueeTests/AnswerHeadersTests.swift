import Crypto
import Foundation
import Testing

/// Headers every answer carries, through the project's nginx and real workers.
@Suite("Answer headers", .serialized)
struct AnswerHeadersTests {
    @Test("nosniff and nginx's request id on worker answers and on nginx's own; a client's unsafe X-Request-Id is replaced")
    func nosniffAndRequestId() async throws {
        let stack = try await Stack("headers", workers: 1, environment: ["MARQUEE_INTERNAL_NETWORKS": "127.0.0.1"])
        defer { stack.stop() }
        let answers: [(String, HTTPAnswer)] = [
            ("worker 200", try stack.raw.send("GET", "/api/v1/health")),
            ("worker 404", try stack.raw.send("GET", "/no/such/route")),
            ("worker 405", try stack.raw.send("DELETE", "/api/v1/health")),
            ("worker 401", try stack.raw.send("GET", "/api/v1/users")),
            ("nginx 403", try stack.raw.send("GET", "/api/v1/status", from: "127.0.0.2")),
            ("nginx 403 secure link", try stack.raw.send("GET", "/media/secure/x.mp4")),
            ("nginx 400", try stack.raw.send("GET", "/x%00")),
            ("nginx 404", try stack.raw.send("GET", "/_marquee/auth")),
        ]
        var ids = Set<String>()
        for (name, answer) in answers {
            // Exactly once (a repeat would read "nosniff, nosniff"): nginx adds them only where the worker did not.
            #expect(answer.header("X-Content-Type-Options") == "nosniff", "\(name): \(answer.headers)")
            let id = answer.header("X-Request-Id") ?? ""
            #expect(id.count == 32 && id.allSatisfy(\.isHexDigit), "\(name): \(answer.headers)")
            ids.insert(id)
        }
        #expect(ids.count == answers.count)

        let chosen = "client chosen id"
        let answer = try stack.raw.send("GET", "/api/v1/health?probe=request-id", headers: ["X-Request-Id": chosen])
        let id = try #require(answer.header("X-Request-Id"))
        #expect(id != chosen && id.count == 32)
        // The worker's line for that request carries the same id.
        let deadline = ContinuousClock.now + .seconds(10)
        var line: String?
        while line == nil && ContinuousClock.now < deadline {
            line = stack.workers.flatMap { $0.log.split(separator: "\n").map(String.init) }.first { $0.contains(#""request_id":"\#(id)""#) }
            if line == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        let logged = try #require(line, "no worker log line with request_id \(id)")
        let fields = try #require(try JSONSerialization.jsonObject(with: Data(logged.utf8)) as? [String: Any])
        #expect(fields["msg"] as? String == "request")
        #expect(fields["route"] as? String == "/api/v1/health")
        #expect(fields["request_id"] as? String == id)
        #expect(!stack.workers.contains { $0.log.contains(chosen) })
    }

    @Test("the movies page carries a strict Content-Security-Policy that still allows its own inline style")
    func moviesPolicy() async throws {
        let fake = try FakeUpstream()
        defer { fake.stop() }
        let stack = try await Stack("headers-movies", workers: 1, environment: ["MARQUEE_GHIBLI_BASE_URL": fake.baseURL])
        defer { stack.stop() }
        var page = try await stack.client.get("/movies/")
        let deadline = ContinuousClock.now + .seconds(20)
        while page.status != 200 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(200))
            page = try await stack.client.get("/movies/")
        }
        #expect(page.status == 200)
        #expect(page.header("X-Content-Type-Options") == "nosniff")
        let policy = try #require(page.header("Content-Security-Policy"))
        let directives = Dictionary(uniqueKeysWithValues: policy.split(separator: ";").map { directive -> (String, [String]) in
            let words = directive.split(separator: " ").map(String.init)
            return (words[0], Array(words.dropFirst()))
        })
        #expect(directives["default-src"] == ["'none'"])
        #expect(directives["base-uri"] == ["'none'"])
        #expect(directives["form-action"] == ["'none'"])
        #expect(directives["frame-ancestors"] == ["'none'"])
        #expect(directives["script-src"] == nil)
        // Every inline style of the page, and nothing else, is allowed by its hash.
        let html = page.text
        var hashes: [String] = []
        var rest = html[...]
        while let open = rest.range(of: "<style>"), let close = rest.range(of: "</style>", range: open.upperBound..<rest.endIndex) {
            hashes.append("'sha256-\(Data(SHA256.hash(data: Data(rest[open.upperBound..<close.lowerBound].utf8))).base64EncodedString())'")
            rest = rest[close.upperBound...]
        }
        #expect(!hashes.isEmpty)
        #expect(directives["style-src"] == hashes)
        #expect(!html.contains("<script") && !html.contains(" style=") && !html.contains("<link") && !html.contains("<img"))
        #expect(try await stack.client.get("/api/v1/movies").header("Content-Security-Policy") == nil)
    }
}
