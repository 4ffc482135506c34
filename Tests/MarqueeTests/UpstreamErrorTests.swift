import Foundation
import Testing

/// An upstream that cannot be reached gives clients a generic error; the detail (host names,
/// NIO's errors) goes to the log only. Through a real nginx and real workers.
@Suite("Upstream errors", .serialized)
struct UpstreamErrorTests {
    static let bogusHost = "no-such-host.invalid"

    /// Text of a client-facing answer that would give the upstream away.
    static func expectGeneric(_ answer: HTTPAnswer, _ name: String, host: String) {
        for leak in [host, "NIO", "IOError", "connection failed", "refused", "errno", "Error("] {
            #expect(!answer.text.contains(leak), "\(name): the answer shows \(leak): \(answer.text)")
        }
    }

    static func logs(_ stack: Stack) -> String {
        stack.workers.map(\.log).joined(separator: "\n")
    }

    @Test("trailers: a closed port and a bogus DNS name give 502 upstream_error with a generic message; the log names the host")
    func trailers() async throws {
        for (label, base, host) in [("closed", "http://127.0.0.1:9", "127.0.0.1"), ("dns", "http://\(Self.bogusHost)", Self.bogusHost)] {
            let stack = try await Stack("upstream-trailers-\(label)", workers: 1, environment: [
                "MARQUEE_VIAPLAY_BASE_URL": base, "MARQUEE_TMDB_BASE_URL": base,
                "MARQUEE_TMDB_API_KEY": "0123456789abcdef0123456789abcdef",
            ])
            defer { stack.stop() }
            for route in ["/api/v1/trailers", "/api/trailer"] {
                let answer = try await stack.client.get(TrailersFixtures.path(TrailersFixtures.arrival, route: route))
                #expect(answer.status == 502, "\(label) \(route): \(answer.text)")
                Self.expectGeneric(answer, "\(label) \(route)", host: host)
            }
            let answer = try await stack.client.get(TrailersFixtures.path(TrailersFixtures.arrival))
            #expect(answer.errorCode == "upstream_error")
            let logged = try await eventually(within: .seconds(5)) {
                Self.logs(stack).split(separator: "\n").contains { $0.contains("trailer lookup failed") && $0.contains(host) }
            }
            #expect(logged, "\(label): no log line names \(host): \(Self.logs(stack).suffix(2000))")
        }
    }

    @Test("movies: a bogus DNS name before the first load, and the upstream's port closed after it; answers and health stay generic")
    func movies() async throws {
        let unresolved = try await Stack("upstream-movies-dns", workers: 1, environment: [
            "MARQUEE_GHIBLI_BASE_URL": "http://\(Self.bogusHost)", "MARQUEE_MOVIES_REFRESH_SECONDS": "1",
        ])
        defer { unresolved.stop() }
        let failedLoad = try await eventually(within: .seconds(15)) { Self.logs(unresolved).contains("movies: load failed") }
        #expect(failedLoad)
        #expect(Self.logs(unresolved).split(separator: "\n").contains { $0.contains("movies: load failed") && $0.contains(Self.bogusHost) })
        for path in ["/api/v1/movies", "/movies/", "/api/v1/health"] {
            Self.expectGeneric(try await unresolved.client.get(path), "before the first load: \(path)", host: Self.bogusHost)
        }

        let fake = try FakeUpstream()
        defer { fake.stop() }
        let stack = try await Stack("upstream-movies-closed", workers: 1, environment: [
            "MARQUEE_GHIBLI_BASE_URL": fake.baseURL, "MARQUEE_MOVIES_REFRESH_SECONDS": "1",
        ])
        defer { stack.stop() }
        let loaded = try await eventually(within: .seconds(15)) { try await stack.client.get("/api/v1/movies").status == 200 }
        #expect(loaded)
        fake.stop()
        let degraded = try await eventually(within: .seconds(20)) {
            try await stack.client.get("/api/v1/health").json()?["status"] as? String == "degraded"
        }
        #expect(degraded)
        let health = try await stack.client.get("/api/v1/health")
        #expect(((health.json()?["degraded"] as? [String: Any])?["movies"] as? String)?.contains("stale") == true, "\(health.text)")
        for (name, answer) in [("health", health), ("json", try await stack.client.get("/api/v1/movies")), ("page", try await stack.client.get("/movies/"))] {
            Self.expectGeneric(answer, "after the port closed: \(name)", host: "127.0.0.1")
        }
        #expect(Self.logs(stack).split(separator: "\n").contains { $0.contains("movies: refresh failed") && $0.contains("127.0.0.1") },
                "the log names the upstream")
    }
}
