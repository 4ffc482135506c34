import Foundation
import Testing

/// schemathesis (PyPI, pinned in deploy/test) against `deploy/run` with the fake upstreams, the
/// admin token and nginx's rate limits lifted: every operation of openapi/marquee.yaml with
/// every check, its examples, coverage and fuzzing phases, and the stateful phase along the
/// description's links (create user → grant → heartbeat → release → delete; put video →
/// mint → visits). A fixed seed and a bounded number of examples per operation keep the run
/// repeatable and within a few minutes.
@Suite("OpenAPI schemathesis", .serialized)
struct OpenAPISchemathesisTests {
    static let examplesPerOperation = 25
    static let seed = 20261207

    static var venv: String {
        ProcessInfo.processInfo.environment["MARQUEE_OPENAPI_VENV"]
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/marquee/openapi-venv").path
    }

    @Test("schemathesis --checks all, stateful links included, finds no failure against deploy/run")
    func schemathesisFindsNothing() async throws {
        let tool = Self.venv + "/bin/schemathesis"
        try #require(FileManager.default.isExecutableFile(atPath: tool),
                     "schemathesis is not installed at \(tool): deploy/test installs it; or set MARQUEE_OPENAPI_VENV to a venv with schemathesis==4.32.5")
        let fake = try FakeUpstream()
        defer { fake.stop() }
        let state = TestPaths.temporaryDirectory("openapi-schemathesis")
        defer { try? FileManager.default.removeItem(at: state) }
        let port = TestPaths.freePort()
        let run = try ChildProcess(
            "deploy-run", executable: "/bin/bash",
            arguments: [TestPaths.script("deploy/run"), "--port", String(port), "--workers", "2", "--state-dir", state.path,
                        "--binary", TestPaths.marquee, "--rates", "bench"],
            environment: TrailersFixtures.environment(fake, [
                "MARQUEE_GHIBLI_BASE_URL": fake.baseURL,
                "MARQUEE_ADMIN_TOKEN": Stack.adminToken,
                "MARQUEE_LOG_LEVEL": "error",
            ]),
            logDirectory: state
        )
        defer { run.stop(grace: .seconds(20)) }
        let client = HTTPClient(base: "http://127.0.0.1:\(port)")
        let ready = try await eventually(within: .seconds(60)) {
            guard await client.status("/api/v1/health") == 200 else { return false }
            return await client.status("/api/v1/movies") == 200
        }
        try #require(ready, "deploy/run did not come up: \(run.log.suffix(3000))")
        // The video the description's examples name, so that they reach a catalogued video.
        let put = try await client.request("PUT", "/api/v1/videos/12345", headers: ["Authorization": "Bearer \(Stack.adminToken)"],
                                           body: Data(FakeUpstream.fixture("video/video-12345.json")))
        #expect(put.status == 201)

        let reports = state.appendingPathComponent("schemathesis-report")
        let started = ContinuousClock.now
        let schemathesis = try ChildProcess(
            "schemathesis", executable: tool,
            // One worker: CPython 3.11 before 3.11.8 can fail ast.parse when two threads use it
            // (hypothesis describes its strategies that way), a spurious error in the run.
            arguments: ["--config-file", TestPaths.repository.appendingPathComponent("openapi/schemathesis.toml").path,
                        "run", OpenAPIDescription.file.path, "--url", "http://127.0.0.1:\(port)",
                        "--checks", "all", "--header", "Authorization: Bearer \(Stack.adminToken)",
                        "--max-examples", String(Self.examplesPerOperation), "--seed", String(Self.seed),
                        "--workers", "1", "--request-timeout", "20", "--suppress-health-check", "all",
                        "--report", "ndjson", "--report-dir", reports.path],
            environment: ["NO_COLOR": "1", "COLUMNS": "160", "SCHEMATHESIS_ANALYTICS": "false"],
            logDirectory: state
        )
        defer { schemathesis.stop() }
        let exitStatus = schemathesis.waitForExit(timeout: .seconds(540))
        let elapsed = ContinuousClock.now - started
        let log = schemathesis.log
        let counts = try Self.counts(in: reports)
        let phases = counts.casesByPhase.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        print("schemathesis \(Self.version) in \(elapsed): \(counts.operations) operations, \(counts.cases) test cases (\(phases)), "
              + "\(counts.checks) checks, \(counts.failedChecks) failed")
        #expect(exitStatus == 0, "schemathesis found failures (exit \(exitStatus.map { String($0) } ?? "none: timed out")):\n\(log.suffix(20000))")
        #expect(counts.failedChecks == 0)
        #expect(counts.operations == OpenAPIDescription.shared.operations.count, "every operation is tested")
        #expect(Set(counts.casesByPhase.keys) == ["examples", "coverage", "fuzzing", "stateful"], "every phase ran: \(counts.casesByPhase)")
        #expect(counts.checks > 5000, "\(counts.checks) checks")
    }

    static let version = "4.32.5"

    struct Counts {
        var operations = 0
        var cases = 0
        var casesByPhase: [String: Int] = [:]
        var checks = 0
        var failedChecks = 0
    }

    /// What the run's NDJSON event stream reports: operations tested, test cases per phase, checks.
    static func counts(in reports: URL) throws -> Counts {
        let file = try #require(try FileManager.default.contentsOfDirectory(at: reports, includingPropertiesForKeys: nil)
            .first { $0.pathExtension == "ndjson" }, "no NDJSON report in \(reports.path)")
        var counts = Counts()
        var labels = Set<String>()
        for line in try String(contentsOf: file, encoding: .utf8).split(separator: "\n") {
            guard let event = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let finished = event["ScenarioFinished"] as? [String: Any],
                  let recorder = finished["recorder"] as? [String: Any] else { continue }
            // Operations are labelled "METHOD /path"; the stateful phase's scenarios otherwise.
            if let label = recorder["label"] as? String, let method = label.split(separator: " ").first,
               OpenAPIDescription.methods.contains(method.lowercased()) {
                labels.insert(label)
            }
            let cases = (recorder["cases"] as? [String: Any])?.count ?? 0
            counts.cases += cases
            counts.casesByPhase[finished["phase"] as? String ?? "?", default: 0] += cases
            for results in (recorder["checks"] as? [String: [[String: Any]]] ?? [:]).values {
                counts.checks += results.count
                counts.failedChecks += results.filter { $0["status"] as? String == "failure" }.count
            }
        }
        counts.operations = labels.count
        return counts
    }
}
