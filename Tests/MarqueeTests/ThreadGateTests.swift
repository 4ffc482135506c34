import Foundation
import Testing

/// Only `MARQUEE_ACTIVE_THREADS` request threads serve at once; the others are parked, and a
/// thread held in a request lets one of them in.
@Suite("Active request threads", .serialized)
struct ThreadGateTests {
    @Test("one active thread of 8: 5 requests held for 1.5 s let 5 parked threads in, health answers meanwhile in ms, and the allowance falls back after")
    func stalledThreadsLetParkedOnesIn() async throws {
        let stack = try await Stack("thread-gate", workers: 1, environment: [
            "MARQUEE_THREADS": "8", "MARQUEE_ACTIVE_THREADS": "1", "MARQUEE_LOG_LEVEL": "warning",
        ])
        defer { stack.stop() }
        #expect(try await Self.threads(stack)?["active"] == 1)
        #expect(try await Self.threads(stack)?["total"] == 8)

        // The test-only sleep route (MARQUEE_TEST_ROUTES=1, set by Stack) holds a thread.
        let sleepers = (0..<5).map { _ in Task { try? await stack.client.get("/api/v1/test/sleep?ms=1500") } }
        try await Task.sleep(for: .milliseconds(300))
        var elapsed: [Duration] = []
        for _ in 0..<10 {
            let started = ContinuousClock.now
            #expect(try await stack.client.get("/api/v1/health").status == 200)
            elapsed.append(ContinuousClock.now - started)
        }
        let during = try await Self.threads(stack)
        for sleeper in sleepers {
            #expect(await sleeper.value?.status == 200)
        }
        // Without a parked thread let in, the first health request waits for a sleeper: over a second.
        let worst = elapsed.max() ?? .zero
        #expect(worst < .milliseconds(500), "health took \(elapsed) while the active thread slept")
        #expect(elapsed.filter { $0 > .milliseconds(100) }.count <= 2, "health took \(elapsed) while the active thread slept")
        #expect(during?["active"] == 6, "status while 5 threads sleep: \(during ?? [:])")
        #expect(during?["busy"].map { $0 >= 6 } == true, "status while 5 threads sleep: \(during ?? [:])")

        let settled = try await eventually(within: .seconds(5)) {
            try await Self.threads(stack)?["active"] == 1
        }
        let after = try await Self.threads(stack)
        #expect(settled, "the allowance stayed at \(after ?? [:]) once the sleepers answered")
    }

    private static func threads(_ stack: Stack) async throws -> [String: Int]? {
        try await stack.client.get("/api/v1/status").json()?["threads"] as? [String: Int]
    }
}
