import Foundation
import Testing

/// Onboarding by content events through nginx and real workers: the admin endpoint, the pool's
/// one consumer (also when its worker is killed), retries and parking, and the refresher; with
/// the embedded store and with PostgreSQL, where the queue and the answers are the cluster's.
@Suite("Trailers events", .serialized)
struct TrailersEventsTests {
    @Test("an event is queued with 202, and within 2 s a GET is served with zero upstream calls", arguments: StorageMode.allCases)
    func prefetchOnEvent(_ storage: StorageMode) async throws {
        let fake = try FakeUpstream()
        defer { fake.stop() }
        let stack = try await Stack("trailers-event", workers: 2, environment: TrailersFixtures.environment(fake), storage: storage)
        defer { stack.stop() }

        let posted = ContinuousClock.now
        let accepted = try await TrailersFixtures.post(stack, ["type": "new-content", "url": TrailersFixtures.arrival + "/"])
        #expect(accepted.status == 202)
        #expect(accepted.json()?["accepted"] as? Int == 1)
        let event = (accepted.json()?["events"] as? [[String: Any]])?.first
        #expect(event?["url"] as? String == TrailersFixtures.arrival)
        #expect(event?["status"] as? String == "queued")

        let drained = try await eventually(within: .seconds(2)) {
            let events = TrailersFixtures.events(try await TrailersFixtures.status(stack))
            return events["queueDepth"] as? Int == 0 && events["processed"] as? Int == 1
        }
        #expect(drained)
        let callsBefore = TrailersFixtures.calls(fake, TrailersFixtures.arrivalPaths)
        #expect(callsBefore == [1, 1, 1], "the consumer made the lookup")
        let answer = try await stack.client.get(TrailersFixtures.path(TrailersFixtures.arrival))
        #expect(ContinuousClock.now - posted < .seconds(2))
        #expect(answer.status == 200)
        #expect(((answer.json()?["trailers"] as? [[String: Any]])?.first?["key"]) as? String == TrailersFixtures.firstTrailer)
        #expect(TrailersFixtures.calls(fake, TrailersFixtures.arrivalPaths) == callsBefore, "the GET made no upstream call")
        if let postgres = stack.postgres {
            #expect(try postgres.psql("SELECT count(*) FROM content_events") == "0", "the event left the cluster's queue")
            #expect(try postgres.psql("SELECT value FROM content_event_counters WHERE name = 'processed'") == "1")
            #expect(try postgres.psql("SELECT count(*) FROM upstream_answers WHERE key LIKE 'trailers/answer/%' AND expires_at > now()") == "1",
                    "the onboarded answer is the cluster's")
        }
    }

    @Test("the endpoint wants the admin token, refuses bad events one by one and keeps the rest", arguments: StorageMode.allCases)
    func batchRefusals(_ storage: StorageMode) async throws {
        let fake = try FakeUpstream()
        defer { fake.stop() }
        let stack = try await Stack("trailers-batch", workers: 2, environment: TrailersFixtures.environment(fake), storage: storage)
        defer { stack.stop() }
        let body = try JSONSerialization.data(withJSONObject: ["type": "new-content", "url": TrailersFixtures.arrival])
        let anonymous = try await stack.client.request("POST", "/api/v1/content-events", body: body)
        #expect(anonymous.status == 401)
        let wrong = try await stack.client.request("POST", "/api/v1/content-events", headers: ["Authorization": "Bearer wrong-token-0123456789"], body: body)
        #expect(wrong.status == 403)
        let notJSON = try await stack.client.request("POST", "/api/v1/content-events", headers: TrailersFixtures.adminHeaders, body: Data("[1]".utf8))
        #expect(notJSON.errorCode == "invalid_body")

        let other = TrailersFixtures.add(fake, slug: "other-film", imdbId: "tt0000301", tmdbId: 301)
        let mixed = try await TrailersFixtures.post(stack, ["events": [
            ["type": "new-content", "url": TrailersFixtures.arrival],
            ["type": "new-content", "url": "https://evil.com/pc-se/film/x"],
            ["type": "new-content", "url": TrailersFixtures.arrival + "?again=1"],
            ["type": "something-else", "url": other.url],
            ["type": "new-content", "url": other.url],
        ]])
        #expect(mixed.status == 400)
        let error = try #require(mixed.json()?["error"] as? [String: Any])
        #expect(error["code"] as? String == "invalid_events")
        #expect(error["accepted"] as? Int == 3)
        let kept = try #require(error["events"] as? [[String: Any]])
        #expect(kept.map { $0["index"] as? Int } == [0, 2, 4])
        #expect(kept.map { $0["status"] as? String } == ["queued", "duplicate", "queued"])
        let refused = try #require(error["refused"] as? [[String: Any]])
        #expect(refused.map { $0["index"] as? Int } == [1, 3])
        #expect(refused.map { $0["code"] as? String } == ["invalid_url", "unsupported_type"])

        let drained = try await eventually(within: .seconds(3)) {
            TrailersFixtures.events(try await TrailersFixtures.status(stack))["processed"] as? Int == 2
        }
        #expect(drained)
        #expect(TrailersFixtures.calls(fake, TrailersFixtures.arrivalPaths) == [1, 1, 1], "the duplicate made no second lookup")
        #expect(TrailersFixtures.calls(fake, other.paths) == [1, 1, 1])
        let events = TrailersFixtures.events(try await TrailersFixtures.status(stack))
        #expect(events["duplicates"] as? Int == 1)
        #expect(events["accepted"] as? Int == 3)
        if let postgres = stack.postgres {
            #expect(try postgres.psql("SELECT string_agg(name || '=' || value, ',' ORDER BY name) FROM content_event_counters")
                    == "accepted=3,duplicates=1,processed=2")
        }
    }

    @Test("failing events are retried with backoff, parked after the last attempt, shown on status, requeued by a new event",
          arguments: StorageMode.allCases)
    func retriesAndParking(_ storage: StorageMode) async throws {
        let fake = try FakeUpstream()
        defer { fake.stop() }
        let stack = try await Stack("trailers-park", workers: 2, environment: TrailersFixtures.environment(fake, [
            "MARQUEE_TRAILERS_EVENT_ATTEMPTS": "3", "MARQUEE_TRAILERS_EVENT_BACKOFF": "0.2",
        ]), storage: storage)
        defer { stack.stop() }
        fake.set(TrailersFixtures.arrivalPaths[0], .status(503, []))
        #expect(try await TrailersFixtures.post(stack, ["type": "new-content", "url": TrailersFixtures.arrival]).status == 202)

        let parked = try await eventually(within: .seconds(5)) {
            TrailersFixtures.events(try await TrailersFixtures.status(stack))["parked"] as? Int == 1
        }
        #expect(parked)
        let events = TrailersFixtures.events(try await TrailersFixtures.status(stack))
        #expect(events["queueDepth"] as? Int == 0)
        let shown = try #require((events["parkedEvents"] as? [[String: Any]])?.first)
        #expect(shown["url"] as? String == TrailersFixtures.arrival)
        #expect(shown["attempts"] as? Int == 3)
        #expect((shown["lastError"] as? String)?.contains("503") == true)
        // Each attempt is one GET and its one retry: three attempts, six calls, none after parking.
        #expect(fake.calls(TrailersFixtures.arrivalPaths[0]) == 6)
        if let postgres = stack.postgres {
            #expect(try postgres.psql("SELECT url, attempts, parked_at IS NOT NULL, claimed_by IS NULL FROM content_events")
                    == "\(TrailersFixtures.arrival)|3|t|t")
        }
        // A parked event no longer waits: the queue's one figures read says so to the scrape.
        let metrics = try await stack.client.get("/metrics")
        let samples = Dictionary(metrics.text.split(separator: "\n").filter { !$0.hasPrefix("#") }.compactMap { line -> (String, Double)? in
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { return nil }
            return (String(line[..<space]), value)
        }) { first, _ in first }
        #expect(samples["marquee_content_events_parked"] == 1 && samples["marquee_content_events_pending"] == 0, "\(metrics.text)")
        #expect(samples["marquee_queue_oldest_item_age_seconds{queue=\"content_events\"}"] == 0)
        // The operator's view is the workers' queue: the database's when there is one.
        let listed = try ChildProcess("trailers-parked", executable: TestPaths.marquee, arguments: ["trailers", "parked"],
                                      environment: stack.workerEnvironment, logDirectory: stack.directory)
        #expect(listed.waitForExit(timeout: .seconds(30)) == 0, "\(listed.log)")
        #expect(listed.log.contains(#""attempts":3"#) && listed.log.contains(#""url":"\#(TrailersFixtures.arrival)""#), "\(listed.log)")
        // Requeued by the operator while Viaplay still fails: three more attempts, parked again.
        let requeued = try ChildProcess("trailers-requeue", executable: TestPaths.marquee, arguments: ["trailers", "requeue"],
                                        environment: stack.workerEnvironment, logDirectory: stack.directory)
        #expect(requeued.waitForExit(timeout: .seconds(30)) == 0, "\(requeued.log)")
        #expect(requeued.log.contains("requeued 1 parked events"), "\(requeued.log)")
        let parkedAgain = try await eventually(within: .seconds(5)) {
            let events = TrailersFixtures.events(try await TrailersFixtures.status(stack))
            return fake.calls(TrailersFixtures.arrivalPaths[0]) == 12 && events["parked"] as? Int == 1
        }
        #expect(parkedAgain, "calls: \(fake.calls(TrailersFixtures.arrivalPaths[0]))")

        fake.loadFixtures()
        let again = try await TrailersFixtures.post(stack, ["type": "new-content", "url": TrailersFixtures.arrival])
        #expect((again.json()?["events"] as? [[String: Any]])?.first?["status"] as? String == "requeued")
        let processed = try await eventually(within: .seconds(3)) {
            let events = TrailersFixtures.events(try await TrailersFixtures.status(stack))
            return events["parked"] as? Int == 0 && events["processed"] as? Int == 1
        }
        #expect(processed)
        if let postgres = stack.postgres {
            #expect(try postgres.psql("SELECT count(*) FROM content_events") == "0")
        }
    }

    @Test("kill -9 of the worker holding the consumer lease with events queued: every event is still processed",
          arguments: StorageMode.allCases)
    func consumerSurvivesKill(_ storage: StorageMode) async throws {
        let fake = try FakeUpstream()
        defer { fake.stop() }
        let stack = try await Stack("trailers-kill", workers: 2, environment: TrailersFixtures.environment(fake, [
            "MARQUEE_TRAILERS_EVENT_ATTEMPTS": "100", "MARQUEE_TRAILERS_EVENT_BACKOFF": "0.1",
        ]), storage: storage)
        defer { stack.stop() }
        let films = (1...5).map { TrailersFixtures.add(fake, slug: "kill-\($0)", imdbId: "tt000040\($0)", tmdbId: 400 + $0) }
        // Viaplay fails until after the kill, so that the events are still queued then.
        for film in films { fake.set(film.paths[0], .status(503, [])) }
        let posted = try await TrailersFixtures.post(stack, ["events": films.map { ["type": "new-content", "url": $0.url] }])
        #expect(posted.status == 202)

        var holder: String?
        _ = try await eventually(within: .seconds(3)) {
            holder = (try await TrailersFixtures.status(stack)["consumer"] as? [String: Any])?["holder"] as? String
            return holder != nil && films.allSatisfy { fake.calls($0.paths[0]) > 0 }
        }
        let holderPid = try #require(holder.flatMap { Int32($0.split(separator: "@").first ?? "") })
        let victim = try #require(stack.workers.first { $0.pid == holderPid })
        #expect(TrailersFixtures.events(try await TrailersFixtures.status(stack))["queueDepth"] as? Int == 5)

        victim.signal(SIGKILL)
        #expect(victim.waitForExit(timeout: .seconds(5)) != nil)
        for film in films { fake.set(film.paths[0], .json(TrailersFixtures.viaplayDocument(imdbId: film.imdbId))) }
        try stack.startWorker()

        let drained = try await eventually(within: .seconds(10)) {
            TrailersFixtures.events(try await TrailersFixtures.status(stack))["queueDepth"] as? Int == 0
        }
        #expect(drained)
        if let postgres = stack.postgres {
            #expect(try postgres.psql("SELECT count(*) FROM content_events") == "0")
            #expect(try postgres.psql("SELECT value FROM content_event_counters WHERE name = 'processed'") == "5", "each event completed once")
        }
        let newHolder = (try await TrailersFixtures.status(stack)["consumer"] as? [String: Any])?["holder"] as? String
        #expect(newHolder != nil && newHolder != holder)
        for film in films {
            let before = TrailersFixtures.calls(fake, film.paths)
            #expect(before[1] == 1 && before[2] == 1, "\(film.url) was looked up by the consumer")
            let answer = try await stack.client.get(TrailersFixtures.path(film.url))
            #expect(answer.status == 200)
            #expect(TrailersFixtures.calls(fake, film.paths) == before, "\(film.url) was served from the store")
        }
    }

    @Test("PostgreSQL stopped: an event answers 503 database_unavailable, stored answers are served, status leaves the queue out; back without a restart")
    func databaseDown() async throws {
        let fake = try FakeUpstream()
        defer { fake.stop() }
        let stack = try await Stack("trailers-db-down", workers: 2, environment: TrailersFixtures.environment(fake, [
            "MARQUEE_DATABASE_STATEMENT_TIMEOUT": "1",
        ]), storage: .postgres)
        defer { stack.stop() }
        let postgres = try #require(stack.postgres)
        #expect(try await stack.client.get(TrailersFixtures.path(TrailersFixtures.arrival)).status == 200)
        let other = TrailersFixtures.add(fake, slug: "down-film", imdbId: "tt0000601", tmdbId: 601)

        postgres.stop()
        for _ in 0..<3 {
            let refused = try await TrailersFixtures.post(stack, ["type": "new-content", "url": other.url])
            #expect(refused.status == 503 && refused.errorCode == "database_unavailable", "\(refused.status) \(refused.text)")
            let cached = try await stack.client.get(TrailersFixtures.path(TrailersFixtures.arrival))
            #expect(cached.status == 200, "a stored answer is served from the host's store")
            let status = try await stack.client.get("/api/v1/status")
            #expect(status.status == 200)
            #expect(TrailersFixtures.events(try await TrailersFixtures.status(stack))["queueDepth"] == nil)
        }
        #expect(TrailersFixtures.calls(fake, TrailersFixtures.arrivalPaths) == [1, 1, 1])
        #expect(TrailersFixtures.calls(fake, other.paths) == [0, 0, 0], "nothing was queued")

        try postgres.start()
        let accepted = try await eventually(within: .seconds(20)) {
            try await TrailersFixtures.post(stack, ["type": "new-content", "url": other.url]).status == 202
        }
        #expect(accepted)
        let processed = try await eventually(within: .seconds(15)) {
            let depth = TrailersFixtures.events(try await TrailersFixtures.status(stack))["queueDepth"] as? Int
            return TrailersFixtures.calls(fake, other.paths) == [1, 1, 1] && depth == 0
        }
        #expect(processed)
    }

    @Test("the refresher re-validates old answers at its rate, and a pulled trailer shows up unasked", arguments: StorageMode.allCases)
    func refresher(_ storage: StorageMode) async throws {
        let fake = try FakeUpstream()
        defer { fake.stop() }
        let stack = try await Stack("trailers-refresh", workers: 2, environment: TrailersFixtures.environment(fake, [
            "MARQUEE_TRAILERS_REFRESH_AGE": "1", "MARQUEE_TRAILERS_REFRESH_RATE": "2",
        ]), storage: storage)
        defer { stack.stop() }
        let films = [TrailersFixtures.arrivalFilm] + (1...4).map { TrailersFixtures.add(fake, slug: "refresh-\($0)", imdbId: "tt000050\($0)", tmdbId: 500 + $0) }
        for film in films {
            #expect(try await stack.client.get(TrailersFixtures.path(film.url)).status == 200)
        }

        // TMDB drops arrival's first trailer; the refresher notices without any client asking.
        let videos = try #require(JSONSerialization.jsonObject(with: Data(FakeUpstream.fixture("tmdb/movie-329865-videos.json"))) as? [String: Any])
        let remaining = (videos["results"] as! [[String: Any]]).filter { $0["key"] as? String != TrailersFixtures.firstTrailer }
        fake.set("/3/movie/329865/videos", .json(FakeUpstream.encode(["results": remaining])))

        func refreshCalls() -> Int { films.map { fake.calls($0.paths[2]) }.reduce(0, +) - films.count }
        var firstAt: ContinuousClock.Instant?
        let allRefreshed = try await eventually(within: .seconds(10)) {
            if firstAt == nil, refreshCalls() >= 1 { firstAt = .now }
            return refreshCalls() >= films.count
        }
        #expect(allRefreshed)
        // At 2 TMDB calls a second, five refreshes (one videos call each) span at least two seconds.
        let span = ContinuousClock.now - (firstAt ?? .now)
        #expect(span >= .milliseconds(1800), "refreshes came too fast: \(span)")
        for film in films {
            #expect(fake.calls(film.paths[0]) == 1 && fake.calls(film.paths[1]) == 1, "the Viaplay and find steps were still fresh")
        }

        let callsBefore = TrailersFixtures.calls(fake, TrailersFixtures.arrivalPaths)
        let answer = try await stack.client.get(TrailersFixtures.path(TrailersFixtures.arrival))
        #expect(((answer.json()?["trailers"] as? [[String: Any]])?.first?["key"]) as? String == "WH9F4WkvhRk")
        #expect(TrailersFixtures.calls(fake, TrailersFixtures.arrivalPaths) == callsBefore)
    }

    @Test("with a database, the refresher re-validates the answers another host onboarded, not only its own host's")
    func refresherWalksTheCluster() async throws {
        let fake = try FakeUpstream()
        defer { fake.stop() }
        // Host A onboards the films and never refreshes; host B refreshes and has served none of them.
        let hostA = try await Stack("trailers-refresh-a", workers: 1, environment: TrailersFixtures.environment(fake, [
            "MARQUEE_TRAILERS_REFRESH_RATE": "0",
        ]), storage: .postgres)
        defer { hostA.stop() }
        let postgres = try #require(hostA.postgres)
        let films = [TrailersFixtures.arrivalFilm] + (1...2).map { TrailersFixtures.add(fake, slug: "cluster-refresh-\($0)", imdbId: "tt000060\($0)", tmdbId: 600 + $0) }
        for film in films {
            #expect(try await hostA.client.get(TrailersFixtures.path(film.url)).status == 200)
        }
        let videos = try #require(JSONSerialization.jsonObject(with: Data(FakeUpstream.fixture("tmdb/movie-329865-videos.json"))) as? [String: Any])
        let remaining = (videos["results"] as! [[String: Any]]).filter { $0["key"] as? String != TrailersFixtures.firstTrailer }
        fake.set("/3/movie/329865/videos", .json(FakeUpstream.encode(["results": remaining])))

        let hostB = try await Stack("trailers-refresh-b", workers: 1, environment: TrailersFixtures.environment(fake, [
            "MARQUEE_DATABASE_URL": postgres.url, "MARQUEE_TRAILERS_REFRESH_AGE": "1", "MARQUEE_TRAILERS_REFRESH_RATE": "5",
        ]))
        defer { hostB.stop() }
        func refreshCalls() -> Int { films.map { fake.calls($0.paths[2]) }.reduce(0, +) - films.count }
        let allRefreshed = try await eventually(within: .seconds(15)) { refreshCalls() >= films.count }
        #expect(allRefreshed, "TMDB videos calls beyond onboarding: \(refreshCalls())")
        let refresher = try #require((try await TrailersFixtures.status(hostB))["refresher"] as? [String: Any])
        #expect((refresher["refreshedHere"] as? Int ?? 0) >= films.count, "\(refresher)")

        // Host B's re-validation replaced the cluster's copy: a host that misses finds the new answer.
        // A stored answer spans several lines; each comes back as one.
        let answers = try postgres.psql("""
            SELECT replace(convert_from(value, 'UTF8'), E'\\n', ' ') FROM upstream_answers WHERE key LIKE 'trailers/answer/%' ORDER BY key
            """).split(separator: "\n")
        #expect(answers.count == films.count)
        #expect(answers.filter { $0.contains("WH9F4WkvhRk") }.count == films.count)
        #expect(answers.filter { $0.contains(TrailersFixtures.firstTrailer) }.count == films.count - 1, "arrival's first trailer is pulled")

        let callsBefore = TrailersFixtures.calls(fake, TrailersFixtures.arrivalPaths)
        let answer = try await hostB.client.get(TrailersFixtures.path(TrailersFixtures.arrival))
        #expect(((answer.json()?["trailers"] as? [[String: Any]])?.first?["key"]) as? String == "WH9F4WkvhRk")
        #expect(TrailersFixtures.calls(fake, TrailersFixtures.arrivalPaths) == callsBefore)
    }
}
