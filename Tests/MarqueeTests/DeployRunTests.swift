import Foundation
import Testing

/// `deploy/run`, the README's command for running the stack, as a developer runs it.
@Suite("deploy/run", .serialized)
struct DeployRunTests {
    @Test("deploy/run serves health, enforces the default rate limits, and stops cleanly on SIGTERM")
    func runsTheStack() async throws {
        let state = TestPaths.temporaryDirectory("deploy-run")
        defer { try? FileManager.default.removeItem(at: state) }
        let port = TestPaths.freePort()
        let run = try ChildProcess(
            "deploy-run", executable: "/bin/bash",
            arguments: [TestPaths.script("deploy/run"), "--port", String(port), "--workers", "2",
                        "--state-dir", state.path, "--binary", TestPaths.marquee],
            // No test reaches the internet: the movies loop would call the real Ghibli API.
            environment: ["MARQUEE_GHIBLI_BASE_URL": "http://127.0.0.1:9"],
            logDirectory: state
        )
        defer { run.stop(grace: .seconds(20)) }
        let client = HTTPClient(base: "http://127.0.0.1:\(port)")

        var healthy = false
        for _ in 0..<200 where !healthy {
            healthy = await client.status("/api/v1/health") == 200
            if !healthy { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(healthy, "deploy/run log: \(run.log)")

        let answers = await withTaskGroup(of: HTTPAnswer?.self) { group in
            for _ in 0..<200 {
                group.addTask { try? await client.get("/api/v1/health") }
            }
            var answers: [HTTPAnswer?] = []
            for await answer in group { answers.append(answer) }
            return answers
        }
        let limited = answers.compactMap { $0 }.filter { $0.status == 429 }
        #expect(!limited.isEmpty)
        #expect(limited.allSatisfy { $0.errorCode == "rate_limited" && $0.header("Content-Type") == "application/json" })

        run.signal(SIGTERM)
        #expect(run.waitForExit(timeout: .seconds(30)) == 0)
        #expect(await client.status("/api/v1/health") == 0, "nothing answers once deploy/run has stopped")
    }
}
