import Foundation
import Testing

/// The trailer routes through a real nginx and real workers, with the fake upstream playing
/// Viaplay and TMDB: shapes, single flight, stale-if-error, hanging TMDB, input safety.
@Suite("Trailers", .serialized)
struct TrailersTests {
    @Test("arrival-2016 answers tFMo3UJ4B4g first on all three routes, in their shapes")
    func threeShapes() async throws {
        let fake = try FakeUpstream()
        defer { fake.stop() }
        let stack = try await Stack("trailers-shapes", workers: 2, environment: TrailersFixtures.environment(fake))
        defer { stack.stop() }

        let full = try await stack.client.get(TrailersFixtures.path(TrailersFixtures.arrival))
        #expect(full.status == 200)
        #expect(full.header("Content-Type") == "application/json")
        let answer = try #require(full.json())
        #expect(answer["url"] as? String == TrailersFixtures.arrival)
        #expect(answer["imdbId"] as? String == "tt2543164")
        #expect(answer["tmdbId"] as? Int == 329_865)
        #expect(answer["stale"] as? Bool == false)
        #expect((answer["updatedAt"] as? String).flatMap { try? Date($0, strategy: .iso8601) } != nil)
        let trailers = try #require(answer["trailers"] as? [[String: Any]])
        #expect(trailers.map { $0["key"] as? String } == ["tFMo3UJ4B4g", "WH9F4WkvhRk"], "the teaser is skipped")
        #expect(trailers[0]["url"] as? String == "https://www.youtube.com/watch?v=tFMo3UJ4B4g")
        #expect(trailers[0]["name"] as? String == "Arrival Trailer (2016) - Paramount Pictures")
        #expect(trailers[0]["language"] as? String == "en")
        #expect(trailers[0]["country"] as? String == "US")
        #expect(trailers[0]["size"] as? Int == 1080)

        let legacy = try await stack.client.get(TrailersFixtures.path(TrailersFixtures.arrival, route: "/api/trailer"))
        #expect(legacy.status == 200)
        #expect(legacy.json() as? [String: String] == ["trailerUrl": "https://youtu.be/tFMo3UJ4B4g"])

        let list = try await stack.client.get(TrailersFixtures.path(TrailersFixtures.arrival, route: "/api/v1/trailer/"))
        #expect(list.status == 200)
        let urls = try JSONSerialization.jsonObject(with: list.body) as? [String]
        #expect(urls?.first == "https://www.youtube.com/watch?v=tFMo3UJ4B4g")
        #expect(urls?.count == 2)

        // Another spelling of the same film is the same stored answer: no further upstream call.
        let respelled = try await stack.client.get(TrailersFixtures.path("https://Content.Viaplay.SE/pc-se/film/arrival-2016/?utm=x#t"))
        #expect(respelled.json()?["url"] as? String == TrailersFixtures.arrival)
        #expect(TrailersFixtures.calls(fake, TrailersFixtures.arrivalPaths) == [1, 1, 1])

        // A film Viaplay does not know is a 404, stored as such.
        let unknown = try await stack.client.get(TrailersFixtures.path("https://content.viaplay.se/pc-se/film/no-such-film"))
        #expect(unknown.status == 404)
        #expect(unknown.errorCode == "not_found")
        _ = try await stack.client.get(TrailersFixtures.path("https://content.viaplay.se/pc-se/film/no-such-film"))
        #expect(fake.calls("/pc-se/film/no-such-film") == 1)

        let status = try await TrailersFixtures.status(stack)
        #expect((status["upstream"] as? [String: Any])?["tmdb"] != nil)
        #expect(status["tmdbAuth"] as? String == "api_key")
    }

    @Test("100 concurrent requests for one unstored URL across two workers: all 200, one call to each upstream path")
    func singleFlight() async throws {
        let fake = try FakeUpstream()
        defer { fake.stop() }
        // A slow Viaplay keeps the lookup in flight while all the requests arrive. Each worker
        // has more threads outside the reserve than there are requests, whichever worker the
        // kernel hands them to; the bulkhead admits 2 lookups, far fewer than the 100 waiting.
        fake.set("/pc-se/film/arrival-2016", .late(.milliseconds(300), then: .json(FakeUpstream.fixture("viaplay/pc-se-film-arrival-2016.json"))))
        let stack = try await Stack("trailers-flight", workers: 2, environment: TrailersFixtures.environment(fake, [
            "MARQUEE_THREADS": "104", "MARQUEE_TRAILERS_RESERVE_THREADS": "2", "MARQUEE_TRAILERS_MAX_UPSTREAM": "1",
        ]))
        defer { stack.stop() }

        let path = TrailersFixtures.path(TrailersFixtures.arrival)
        let answers = await withTaskGroup(of: HTTPAnswer?.self) { group in
            for _ in 0..<100 { group.addTask { try? await stack.client.get(path) } }
            var answers: [HTTPAnswer?] = []
            for await answer in group { answers.append(answer) }
            return answers
        }
        #expect(TrailersFixtures.calls(fake, TrailersFixtures.arrivalPaths) == [1, 1, 1])
        let found = answers.filter { $0?.status == 200 }
        #expect(found.count == 100, "statuses: \(answers.map { $0?.status ?? 0 }.sorted())")
        #expect(found.allSatisfy { (($0?.json()?["trailers"] as? [[String: Any]])?.first?["key"] as? String) == TrailersFixtures.firstTrailer })
        let status = try await TrailersFixtures.status(stack)
        #expect((status["bulkhead"] as? [String: Any])?["refused"] as? Int == 0)
    }

    @Test("followers of a hanging lookup wait outside the reserve: health and cached trailers keep answering")
    func followersLeaveTheReserve() async throws {
        let fake = try FakeUpstream()
        defer { fake.stop() }
        let stack = try await Stack("trailers-reserve", workers: 1, environment: TrailersFixtures.environment(fake, [
            "MARQUEE_THREADS": "4", "MARQUEE_TRAILERS_RESERVE_THREADS": "1", "MARQUEE_UPSTREAM_TIMEOUT": "2",
        ]))
        defer { stack.stop() }
        let cached = TrailersFixtures.path(TrailersFixtures.arrival)
        #expect(try await stack.client.get(cached).status == 200)
        let film = TrailersFixtures.add(fake, slug: "hanging-for-all", imdbId: "tt0000301", tmdbId: 301)
        fake.set(film.paths[1], .hang)

        // Six requests for the one hanging film: three threads may wait on it, the fourth is the reserve.
        let followers = (0..<6).map { _ in Task { try? await stack.client.get(TrailersFixtures.path(film.url)) } }
        try await Task.sleep(for: .milliseconds(500))
        var slowest = Duration.zero
        for index in 0..<10 {
            let started = ContinuousClock.now
            #expect(try await stack.client.get(index % 2 == 0 ? "/api/v1/health" : cached).status == 200)
            slowest = max(slowest, ContinuousClock.now - started)
        }
        #expect(slowest < .milliseconds(500), "slowest answer while the lookup hung: \(slowest)")
        var statuses: [Int] = []
        for follower in followers { statuses.append(await follower.value?.status ?? 0) }
        #expect(statuses.filter { $0 == 504 }.count >= 3, "statuses: \(statuses)")
        #expect(statuses.allSatisfy { $0 == 504 || $0 == 503 }, "statuses: \(statuses)")
        #expect(fake.calls(film.paths[1]) == 1)
    }

    @Test("TMDB failing: 200 from the store, then stale after expiry; a never-seen URL gets 502 in time")
    func staleIfError() async throws {
        let fake = try FakeUpstream()
        defer { fake.stop() }
        let timeout = 2.0
        let stack = try await Stack("trailers-stale", workers: 2, environment: TrailersFixtures.environment(fake, [
            "MARQUEE_TRAILERS_VIDEOS_TTL": "1", "MARQUEE_UPSTREAM_TIMEOUT": "\(timeout)",
        ]))
        defer { stack.stop() }
        let path = TrailersFixtures.path(TrailersFixtures.arrival)
        let first = try await stack.client.get(path)
        #expect(first.status == 200)
        #expect(first.json()?["stale"] as? Bool == false)

        for tmdbPath in TrailersFixtures.arrivalPaths.dropFirst() { fake.set(tmdbPath, .status(500, [])) }
        let stored = try await stack.client.get(path)
        #expect(stored.status == 200)
        #expect(stored.json()?["stale"] as? Bool == false)
        #expect(TrailersFixtures.calls(fake, TrailersFixtures.arrivalPaths) == [1, 1, 1])

        try await Task.sleep(for: .milliseconds(1200))
        let stale = try await stack.client.get(path)
        #expect(stale.status == 200)
        #expect(stale.json()?["stale"] as? Bool == true)
        #expect(((stale.json()?["trailers"] as? [[String: Any]])?.first?["key"]) as? String == TrailersFixtures.firstTrailer)
        #expect(fake.calls("/3/movie/329865/videos") >= 2, "the expired answer was looked up again")
        let legacy = try await stack.client.get(TrailersFixtures.path(TrailersFixtures.arrival, route: "/api/trailer"))
        #expect(legacy.json() as? [String: String] == ["trailerUrl": "https://youtu.be/tFMo3UJ4B4g"])

        let newFilm = TrailersFixtures.add(fake, slug: "never-seen", imdbId: "tt0000002", tmdbId: 2)
        fake.set(newFilm.paths[1], .status(500, []))
        let started = ContinuousClock.now
        let failed = try await stack.client.get(TrailersFixtures.path(newFilm.url))
        #expect(failed.status == 502)
        #expect(failed.errorCode == "upstream_error")
        #expect(ContinuousClock.now - started < .seconds(timeout + 1))

        // A body that is not what TMDB sends is an upstream error too, and is not stored.
        let garbled = TrailersFixtures.add(fake, slug: "garbled", imdbId: "tt0000003", tmdbId: 3)
        fake.set(garbled.paths[1], .json(Array("<html>busy</html>".utf8)))
        let malformed = try await stack.client.get(TrailersFixtures.path(garbled.url))
        #expect(malformed.status == 502)
        #expect(malformed.errorCode == "upstream_error")
        fake.set(garbled.paths[1], .json(Array(#"{"movie_results":[{"id":3}]}"#.utf8)))
        #expect(try await stack.client.get(TrailersFixtures.path(garbled.url)).status == 200)
    }

    @Test("TMDB hanging: new lookups 504 in time while health and cached trailers keep answering")
    func hangingTMDB() async throws {
        let fake = try FakeUpstream()
        defer { fake.stop() }
        let timeout = 1.5
        let stack = try await Stack("trailers-hang", workers: 2, environment: TrailersFixtures.environment(fake, [
            "MARQUEE_THREADS": "4", "MARQUEE_UPSTREAM_TIMEOUT": "\(timeout)",
        ]))
        defer { stack.stop() }
        let cached = TrailersFixtures.path(TrailersFixtures.arrival)
        #expect(try await stack.client.get(cached).status == 200)
        let films = (1...2).map { TrailersFixtures.add(fake, slug: "hanging-\($0)", imdbId: "tt000010\($0)", tmdbId: 100 + $0) }
        for film in films { fake.set(film.paths[1], .hang) }

        let probes = ProbeLog()
        let probing = (0..<4).map { index in
            Task {
                let path = index % 2 == 0 ? "/api/v1/health" : cached
                while !probes.isStopped {
                    let started = ContinuousClock.now
                    let status = (try? await stack.client.request("GET", path, timeout: 5).status) ?? 0
                    probes.record(status: status, latency: ContinuousClock.now - started)
                }
            }
        }
        try await Task.sleep(for: .milliseconds(300))
        let before = probes.snapshot()

        // As many lookups as one worker's bulkhead (MARQUEE_THREADS / 2) admits.
        let lookups = await withTaskGroup(of: (HTTPAnswer?, Duration).self) { group in
            for film in films {
                group.addTask {
                    let started = ContinuousClock.now
                    let answer = try? await stack.client.get(TrailersFixtures.path(film.url))
                    return (answer, ContinuousClock.now - started)
                }
            }
            var results: [(HTTPAnswer?, Duration)] = []
            for await result in group { results.append(result) }
            return results
        }
        let during = probes.snapshot()
        // Stopped by a flag: cancelling a task inside URLSession's data(for:) deadlocks on Linux.
        probes.stop()
        for task in probing { await task.value }

        for (answer, elapsed) in lookups {
            #expect(answer?.status == 504)
            #expect(answer?.errorCode == "upstream_timeout")
            #expect(elapsed < .seconds(timeout + 1))
        }
        let answeredWhileHanging = during.ok - before.ok
        #expect(answeredWhileHanging >= 50, "health and cached trailers kept answering: \(answeredWhileHanging) while TMDB hung")
        #expect(during.failed == 0)
        #expect(during.slowest < .milliseconds(500), "slowest probe: \(during.slowest)")
    }

    @Test("a full bulkhead sheds new lookups with 503 and Retry-After, and cached ones still answer")
    func bulkheadSheds() async throws {
        let fake = try FakeUpstream()
        defer { fake.stop() }
        let stack = try await Stack("trailers-bulkhead", workers: 1, environment: TrailersFixtures.environment(fake, [
            "MARQUEE_THREADS": "3", "MARQUEE_TRAILERS_MAX_UPSTREAM": "1", "MARQUEE_UPSTREAM_TIMEOUT": "1.5",
        ]))
        defer { stack.stop() }
        let cached = TrailersFixtures.path(TrailersFixtures.arrival)
        #expect(try await stack.client.get(cached).status == 200)
        let films = (1...3).map { TrailersFixtures.add(fake, slug: "shed-\($0)", imdbId: "tt000020\($0)", tmdbId: 200 + $0) }
        for film in films { fake.set(film.paths[0], .hang) }

        let leader = Task { try await stack.client.get(TrailersFixtures.path(films[0].url)) }
        try await Task.sleep(for: .milliseconds(300))
        let shed = try await stack.client.get(TrailersFixtures.path(films[1].url))
        #expect(shed.status == 503)
        #expect(shed.errorCode == "overloaded")
        #expect(shed.header("Retry-After") == "1")
        #expect(try await stack.client.get(cached).status == 200)
        #expect(try await leader.value.status == 504)
        let status = try await TrailersFixtures.status(stack)
        #expect((status["bulkhead"] as? [String: Any])?["refused"] as? Int == 1)
    }

    @Test("the issue's refused URLs answer 400 (invalid_url, or the earlier texts on its route) and reach no upstream")
    func refusedURLs() async throws {
        let fake = try FakeUpstream()
        defer { fake.stop() }
        let stack = try await Stack("trailers-refused", workers: 2, environment: TrailersFixtures.environment(fake))
        defer { stack.stop() }
        let huge = "https://content.viaplay.se/pc-se/film/" + String(repeating: "a", count: 10_000)
        let refused = [
            "http://content.viaplay.se/pc-se/film/arrival-2016",
            "https://content.viaplay.se.evil.com/pc-se/film/x",
            "https://evil.com/pc-se/film/x",
            "https://content.viaplay.se@evil.com/pc-se/film/x",
            "https://content.viaplay.se:8443/pc-se/film/x",
            "https://content.viaplay.se/pc-se/film/..%2f..%2fadmin",
            "https://content.viaplay.se/pc-se/serie/x",
            "https://127.0.0.1/pc-se/film/x",
            "",
        ]
        for url in refused {
            for route in ["/api/v1/trailers", "/api/trailer"] {
                let answer = try await stack.client.get(TrailersFixtures.path(url, route: route))
                #expect(answer.status == 400, "\(route) \(url)")
                #expect(answer.errorCode == "invalid_url", "\(route) \(url)")
                #expect((answer.json()?["error"] as? [String: Any])?["message"] as? String != nil)
            }
            // The second earlier service's route answers its own texts (LegacyTrailerServiceTests).
            let legacy = try await stack.client.get(TrailersFixtures.path(url, route: "/api/v1/trailer/"))
            #expect(legacy.status == 400, "\(url)")
            #expect(legacy.text == (url.isEmpty ? "Missing 'url' parameter" : "Invalid 'url' parameter"), "\(url)")
        }
        // The same text unencoded in the query: the worker sees the decoded dots and slashes.
        let raw = try await stack.client.get("/api/v1/trailers?url=https://content.viaplay.se/pc-se/film/..%2f..%2fadmin")
        #expect(raw.errorCode == "invalid_url")
        let missing = try await stack.client.get("/api/v1/trailers")
        #expect(missing.errorCode == "invalid_url")

        // A 10 kB url fits the site's 16 KiB request-line buffers and is refused by the worker;
        // a request line past them is refused by nginx itself, in JSON too.
        let long = try await stack.client.get(TrailersFixtures.path(huge))
        #expect(long.status == 400 && long.errorCode == "invalid_url", "\(long.status) \(long.text.prefix(80))")
        let overLine = try await stack.client.get(TrailersFixtures.path(huge + String(repeating: "a", count: 10_000)))
        #expect(overLine.status == 414 && overLine.errorCode == "uri_too_long", "\(overLine.status) \(overLine.text.prefix(80))")
        // The same url in an event body reaches the worker, which refuses it with the same check.
        let event = try await TrailersFixtures.post(stack, ["type": "new-content", "url": huge])
        #expect(event.status == 400)
        let refusal = ((event.json()?["error"] as? [String: Any])?["refused"] as? [[String: Any]])?.first
        #expect(refusal?["code"] as? String == "invalid_url")
        #expect((refusal?["message"] as? String)?.contains("longer than 2048") == true)

        for path in TrailersFixtures.arrivalPaths + ["/pc-se/film/x", "/pc-se/serie/x", "/admin"] {
            #expect(fake.calls(path) == 0, "\(path)")
        }
    }

    @Test("a burst of 600 requests from one client through deploy/run's nginx gets 429 JSON")
    func burstThroughDeployRun() async throws {
        let fake = try FakeUpstream()
        defer { fake.stop() }
        let state = TestPaths.temporaryDirectory("trailers-run")
        defer { try? FileManager.default.removeItem(at: state) }
        let port = TestPaths.freePort()
        let run = try ChildProcess(
            "deploy-run", executable: "/bin/bash",
            arguments: [TestPaths.script("deploy/run"), "--port", "\(port)", "--state-dir", state.path,
                        "--workers", "2", "--binary", TestPaths.marquee],
            environment: TrailersFixtures.environment(fake), logDirectory: state
        )
        defer { run.stop(grace: .seconds(40)) }
        let client = HTTPClient(base: "http://127.0.0.1:\(port)")
        let up = try await eventually(within: .seconds(60)) { await client.status("/api/v1/health") == 200 }
        try #require(up, "deploy/run did not come up: \(run.log)")
        let path = TrailersFixtures.path(TrailersFixtures.arrival)
        #expect(try await client.get(path).status == 200)
        // The trailers zone's burst (40 at 20r/s) refills before the burst starts.
        try await Task.sleep(for: .seconds(2))

        let answers = await withTaskGroup(of: HTTPAnswer?.self) { group in
            for _ in 0..<600 { group.addTask { try? await client.get(path) } }
            var answers: [HTTPAnswer?] = []
            for await answer in group { answers.append(answer) }
            return answers
        }
        let limited = answers.filter { $0?.status == 429 }
        #expect(!limited.isEmpty)
        #expect(limited.allSatisfy { $0?.errorCode == "rate_limited" && $0?.header("Content-Type") == "application/json" })
        #expect(answers.allSatisfy { $0?.status == 200 || $0?.status == 429 })
        #expect(answers.contains { $0?.status == 200 })
        run.signal(SIGTERM)
        #expect(run.waitForExit(timeout: .seconds(40)) == 0)
    }
}

/// Statuses and latencies of the probes that run while an upstream misbehaves.
final class ProbeLog: @unchecked Sendable {
    private let lock = NSLock()
    private var ok = 0
    private var failed = 0
    private var slowest: Duration = .zero
    private var stopped = false

    var isStopped: Bool { lock.withLock { stopped } }

    func stop() {
        lock.withLock { stopped = true }
    }

    func record(status: Int, latency: Duration) {
        lock.withLock {
            if status == 200 { ok += 1 } else { failed += 1 }
            slowest = max(slowest, latency)
        }
    }

    func snapshot() -> (ok: Int, failed: Int, slowest: Duration) {
        lock.withLock { (ok, failed, slowest) }
    }
}
