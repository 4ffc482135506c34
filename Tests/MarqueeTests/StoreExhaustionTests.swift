import Foundation
import LMDBStore
import Testing

/// A store without room, and fill leases after failed fills, through nginx and real workers.
@Suite("Store exhaustion", .serialized)
struct StoreExhaustionTests {
    @Test("a full store: writes answer 507 store_full at once, health says so, no worker dies, and writes resume once room is freed")
    func fullStore() async throws {
        let stack = try await Stack("store-full", workers: 2, environment: ["MARQUEE_STORE_MAX_MB": "16"])
        defer { stack.stop() }
        #expect(try await stack.createUser("before").status == 201)
        let pids = stack.workers.map(\.pid)

        // The test process is one more writer of the pool's store, with the workers' map size.
        let directory = try #require(stack.workerEnvironment["MARQUEE_STORE_DIR"])
        let store = try Store.open(StoreOptions(directory: directory, maxBytes: 16 << 20))
        // Until the workers' own cache entries are evicted too, so that the store is full of state.
        var fillers = 0
        repeat {
            for size in [8192, 1024, 64] {
                while true {
                    do {
                        try store.put("filler/\(fillers)", Array(repeating: UInt8(9), count: size), as: .state)
                        fillers += 1
                    } catch let error as StoreError where error.isFull {
                        break
                    }
                }
            }
        } while try store.evict(force: true) > 0
        #expect(fillers > 1_000)

        let started = ContinuousClock.now
        let statuses = await concurrently(40, width: 20) { index in
            (try? await stack.createUser("full-\(index)").status) ?? 0
        }
        #expect(statuses.allSatisfy { $0 == 507 }, "\(statuses)")
        #expect(ContinuousClock.now - started < .seconds(20), "answered, not hung")
        let refused = try await stack.createUser("one-more")
        #expect(refused.status == 507)
        #expect(refused.errorCode == "store_full")
        let grantFull = try await stack.grant("before", "stream_1")
        #expect(grantFull.status == 507)
        #expect(try await stack.admin("GET", "/api/v1/users/before").status == 200, "reads still answer")

        var degraded: [String: Any]?
        for _ in 0..<4 {
            let health = try await stack.client.get("/api/v1/health")
            #expect(health.status == 200)
            if health.json()?["status"] as? String == "degraded" { degraded = health.json(); break }
        }
        let reason = (degraded?["degraded"] as? [String: Any])?["store"] as? String
        #expect(reason?.contains("map") == true, "health names the full store: \(String(describing: degraded))")

        for filler in try store.scan(prefix: "filler/", limit: 2_000) { try store.delete(filler.key) }
        #expect(try await stack.createUser("after").status == 201, "writes resume without a restart")
        #expect(try await stack.grant("before", "stream_1").status == 201)
        #expect(stack.workers.map(\.pid) == pids)
        let running = stack.workers.allSatisfy { $0.isRunning }
        #expect(running, "no worker died")
    }

    @Test("trailer fills that fail (5xx, a hang past the deadline, malformed JSON) leave no lease behind")
    func failedFillsReleaseLeases() async throws {
        let fake = try FakeUpstream()
        defer { fake.stop() }
        let stack = try await Stack("store-leases", workers: 2, environment: TrailersFixtures.environment(fake, [
            "MARQUEE_UPSTREAM_TIMEOUT": "1",
        ]))
        defer { stack.stop() }
        // The workers' own leases (the movies loop's, the event consumer's) settle first.
        try await Task.sleep(for: .seconds(2))
        let base = try await Self.leases(stack)

        let failing: [(slug: String, behaviour: FakeUpstream.Behaviour, status: Int)] = [
            ("failing-5xx", .status(500, []), 502),
            ("failing-malformed", .json(Array(#"{"movie_results": [{"id": "#.utf8)), 502),
            ("failing-hang", .hang, 504),
        ]
        // One after the other, so that no lookup is shed by a worker's bulkhead; the hang last,
        // so that its failure is fresh when the count is read.
        var answers: [Int] = []
        for (index, film) in failing.enumerated() {
            let added = TrailersFixtures.add(fake, slug: film.slug, imdbId: "tt000020\(index)", tmdbId: 200 + index)
            fake.set(added.paths[1], film.behaviour)
            answers.append((try? await stack.client.get(TrailersFixtures.path(added.url)).status) ?? 0)
        }
        #expect(answers == failing.map(\.status))
        let afterFailures = try await Self.leases(stack)
        #expect(afterFailures > base, "the failed fills left their leases for waiters: \(afterFailures) over \(base)")

        let deadline = ContinuousClock.now + .seconds(20)
        var leases = afterFailures
        while leases > base && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(500))
            leases = try await Self.leases(stack)
        }
        #expect(leases == base, "the lease count returns to its base of \(base)")
    }

    static func leases(_ stack: Stack) async throws -> Int {
        let status = try await stack.client.get("/api/v1/status")
        return try #require((status.json()?["store"] as? [String: Any])?["leases"] as? Int)
    }
}
