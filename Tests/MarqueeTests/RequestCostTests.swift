import Foundation
import Testing

extension Benchmarks {
    /// Instructions one request costs a worker, counted by callgrind through `deploy/profile`
    /// (opt-in: see `BenchRun`). Counts, unlike timings, repeat on a loaded machine, so the
    /// budgets are tight enough to catch a cost that creeps back into the request path.
    @Suite("Request cost")
    struct RequestCostTests {
        @Test("health", arguments: [Self.healthBudget])
        func health(budget: Int) throws {
            let cost = try Self.profile("/api/v1/health", label: "health")
            #expect(cost <= budget, "health costs \(cost) instructions per request, over the budget of \(budget)")
        }

        @Test("a cached trailer hit", arguments: [Self.trailerBudget])
        func cachedTrailer(budget: Int) async throws {
            let fake = try FakeUpstream()
            defer { fake.stop() }
            // deploy/profile's probe is the miss that stores the answer; every counted request is a hit.
            let cost = try Self.profile(TrailersFixtures.path(TrailersFixtures.arrival), environment: TrailersFixtures.environment(fake),
                                        label: "trailer")
            #expect(TrailersFixtures.calls(fake, TrailersFixtures.arrivalPaths) == [1, 1, 1], "every counted request was a hit")
            #expect(cost <= budget, "a cached trailer hit costs \(cost) instructions per request, over the budget of \(budget)")
        }

        /// Measured 60.9k and 59.0k (one thread, logging at info; the trailer hit's film URL
        /// comes from the worker's memo); the margin leaves room for a feature's honest cost, not
        /// for a copy or a lock per request crept back in.
        static let healthBudget = 66_000
        static let trailerBudget = 66_000

        /// Runs deploy/profile, prints its report and returns its `instructions/request`.
        static func profile(_ route: String, environment: [String: String] = [:], label: String) throws -> Int {
            let scratch = TestPaths.temporaryDirectory("profile-\(label)")
            defer { try? FileManager.default.removeItem(at: scratch) }
            let run = try ChildProcess(
                "deploy-profile", executable: "/bin/bash",
                arguments: [TestPaths.script("deploy/profile"), route, "--port", "\(TestPaths.freePort())", "--binary", TestPaths.marquee],
                environment: environment.merging(BenchRun.passedThrough) { _, new in new }, logDirectory: scratch
            )
            defer { run.stop() }
            let status = run.waitForExit(timeout: .seconds(900))
            print(run.log)
            try #require(status == 0, "deploy/profile failed")
            let last = run.log.split(separator: "\n").last { $0.hasPrefix("instructions/request ") }
            return try #require(last.flatMap { Int($0.dropFirst("instructions/request ".count)) }, "no instructions/request line")
        }
    }
}
