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
        let changed = "MARQUEE_MAX_BODY_BYTES=2000\nMARQUEE_STREAM_LIMIT=5\nMARQUEE_MOVIES_REFRESH_SECONDS=120\n"
        try (changed + "MARQUEE_TRAILERS_MAX_UPSTREAM=99\n").write(to: envFile, atomically: true, encoding: .utf8)
        stack.workers[0].signal(SIGHUP)
        try await UsersTests.waitForLog("reload refused, keeping the running configuration", in: stack)
        #expect(try await Self.reloadable(stack) == before)
        #expect(try await stack.client.request("POST", "/api/v1/test/echo", body: Data(count: 1500)).status == 413)

        try (changed + "MARQUEE_TRAILERS_MAX_UPSTREAM=1\n").write(to: envFile, atomically: true, encoding: .utf8)
        stack.workers[0].signal(SIGHUP)
        try await UsersTests.waitForLog("configuration reloaded", in: stack)
        #expect(try await Self.reloadable(stack) == Figures(generation: 2, maxBodyBytes: 2000, streamLimit: 5, moviesInterval: 120, bulkheadLimit: 1))
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
