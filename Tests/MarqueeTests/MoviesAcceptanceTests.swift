import Foundation
import Testing

/// The movies issue's acceptance, through a real nginx and real workers, with the fake upstream
/// serving the real data.json.
@Suite("Movies acceptance", .serialized)
final class MoviesAcceptanceTests {
    let fake: FakeUpstream

    init() throws {
        fake = try FakeUpstream()
    }

    deinit { fake.stop() }

    private func stack(_ label: String, workers: Int = 2, refreshSeconds: String = "1",
                       environment: [String: String] = [:]) async throws -> Stack {
        try await Stack(label, workers: workers, environment: [
            "MARQUEE_GHIBLI_BASE_URL": fake.baseURL,
            "MARQUEE_MOVIES_REFRESH_SECONDS": refreshSeconds,
        ].merging(environment) { _, new in new })
    }

    private static func films(retitling index: Int? = nil, as title: String = "") -> [UInt8] {
        var films = MoviesCatalogueTests.data["films"]!
        if let index { films[index]["title"] = title }
        return FakeUpstream.encode(films)
    }

    /// Polls until `condition` holds; returns how long it took, or nil after `timeout`.
    private func waitUntil(timeout: Duration, _ condition: () async throws -> Bool) async rethrows -> Duration? {
        let started = ContinuousClock.now
        while ContinuousClock.now - started < timeout {
            if try await condition() { return ContinuousClock.now - started }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return nil
    }

    private static func movies(_ answer: HTTPAnswer) -> [[String: Any]] {
        answer.json()?["movies"] as? [[String: Any]] ?? []
    }

    private static func people(of title: String, in answer: HTTPAnswer) -> [String] {
        let movie = movies(answer).first { $0["title"] as? String == title }
        return (movie?["people"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
    }

    @Test("the page and the JSON list all 22 films, with each person under each of their films")
    func catalogue() async throws {
        let stack = try await stack("movies-catalogue", refreshSeconds: "50")
        defer { stack.stop() }

        let json = try await stack.client.get("/api/v1/movies")
        #expect(json.status == 200)
        #expect(json.header("Content-Type") == "application/json")
        #expect(Self.movies(json).count == 22)
        #expect(json.json()?["stale"] as? Bool == false)
        #expect(json.json()?["refreshedAt"] is String)
        #expect(Self.people(of: "Spirited Away", in: json).contains("Haku"))
        for title in ["The Cat Returns", "Whisper of the Heart"] {
            #expect(Self.people(of: title, in: json).contains("Baron Humbert von Gikkingen"), "\(title)")
            #expect(Self.people(of: title, in: json).contains("Renaldo Moon aka Moon aka Muta"), "\(title)")
        }
        let years = Self.movies(json).compactMap { ($0["releaseDate"] as? String).flatMap { Int($0) } }
        #expect(years == years.sorted())

        let page = try await stack.client.get("/movies/")
        #expect(page.status == 200)
        #expect(page.header("Content-Type") == "text/html; charset=utf-8")
        let rows = MoviesPageReader.rows(page.text)
        #expect(rows.count == 22)
        #expect(rows["Spirited Away"]?.contains("<li>Haku</li>") == true)
        #expect(rows["Spirited Away"]?.contains("千と千尋の神隠し") == true)
        for title in ["The Cat Returns", "Whisper of the Heart"] {
            #expect(rows[title]?.contains("<li>Baron Humbert von Gikkingen</li>") == true, "\(title)")
        }
        #expect(page.text.contains("Data refreshed <time datetime="))

        for answer in [json, page] {
            #expect(answer.header("ETag")?.hasPrefix("\"") == true)
            #expect(answer.header("Last-Modified")?.hasSuffix(" GMT") == true)
            let maxAge = answer.header("Cache-Control").flatMap { $0.split(separator: "=").last.flatMap { Int($0) } }
            #expect((0...60).contains(maxAge ?? -1))
        }
        // URLSession on Linux loops on a relative Location, so curl checks the redirect.
        let curl = Process()
        let output = Pipe()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        curl.arguments = ["-s", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", "\(stack.client.base)/movies"]
        curl.standardOutput = output
        try curl.run()
        curl.waitUntilExit()
        let redirect = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(redirect == "301 \(stack.client.base)/movies/")
        #expect(fake.calls("/films") == 1)
        #expect(fake.calls("/people") == 1)
    }

    @Test("a title changed upstream shows on the page within 60 s (here within a few, at a 1 s interval)")
    func changedTitleShows() async throws {
        let stack = try await stack("movies-change")
        defer { stack.stop() }
        #expect(try await stack.client.get("/movies/").status == 200)

        fake.set("/films", .json(Self.films(retitling: 10, as: "Spirited Away (director's cut)")))
        let shown = try await waitUntil(timeout: .seconds(60)) {
            try await stack.client.get("/movies/").text.contains("Spirited Away (director&#39;s cut)")
        }
        let delay = try #require(shown, "the new title never showed")
        #expect(delay < .seconds(5))
        let json = try await stack.client.get("/api/v1/movies")
        #expect(Self.movies(json).contains { $0["title"] as? String == "Spirited Away (director's cut)" })
        let refreshedAt = try #require((json.json()?["refreshedAt"] as? String).flatMap { ISO8601DateFormatter().date(from: $0) })
        #expect(Date().timeIntervalSince(refreshedAt) < 60)
    }

    /// The issue's run is 4 workers, 3 minutes of page loads, a 50 s interval: at most 4 fetches,
    /// that is one at start and one per elapsed interval. The same bound, floor(elapsed /
    /// interval) + 1, is checked here with the interval scaled down to 2 s over 12 s (at most 7),
    /// so that the suite stays short; MARQUEE_TEST_LONG=1 also runs the real 3 minutes.
    @Test("4 workers, continuous page loads: the upstream is fetched at most once per interval (scaled: 2 s over 12 s)")
    func fetchesPerIntervalScaled() async throws {
        try await fetchesPerInterval(interval: 2, duration: .seconds(12))
    }

    @Test("4 workers, continuous page loads for 3 minutes at the default 50 s interval: at most 4 fetches",
          .enabled(if: ProcessInfo.processInfo.environment["MARQUEE_TEST_LONG"] == "1"))
    func fetchesPerIntervalFull() async throws {
        try await fetchesPerInterval(interval: 50, duration: .seconds(180))
    }

    private func fetchesPerInterval(interval: Int, duration: Duration) async throws {
        let started = ContinuousClock.now
        let stack = try await stack("movies-load", workers: 4, refreshSeconds: String(interval))
        defer { stack.stop() }
        let deadline = ContinuousClock.now + duration
        let statuses = await withTaskGroup(of: [Int: Int].self) { group in
            for client in 0..<8 {
                group.addTask {
                    var counts: [Int: Int] = [:]
                    while ContinuousClock.now < deadline {
                        let path = client % 2 == 0 ? "/movies/" : "/api/v1/movies"
                        let status = (try? await stack.client.get(path).status) ?? 0
                        counts[status, default: 0] += 1
                    }
                    return counts
                }
            }
            return await group.reduce(into: [Int: Int]()) { total, counts in total.merge(counts, uniquingKeysWith: +) }
        }
        let elapsed = ContinuousClock.now - started
        let bound = Int(elapsed.components.seconds) / interval + 1
        #expect(statuses.keys.sorted() == [200], "\(statuses)")
        #expect(statuses[200, default: 0] > 100)
        #expect(fake.calls("/films") <= bound, "\(fake.calls("/films")) fetches in \(elapsed)")
        #expect(fake.calls("/people") <= bound)
        #expect(fake.calls("/films") >= bound - 2, "the leader kept refreshing")
    }

    @Test("upstream failing, then answering garbage: the last data stays, marked stale, and health is degraded")
    func staleOnFailureAndGarbage() async throws {
        let stack = try await stack("movies-stale")
        defer { stack.stop() }
        #expect(Self.movies(try await stack.client.get("/api/v1/movies")).count == 22)

        for behaviour in [FakeUpstream.Behaviour.status(500, Array("{}".utf8)), .json(Array("<html>garbage".utf8))] {
            fake.set("/films", behaviour)
            let marked = try await waitUntil(timeout: .seconds(20)) {
                try await stack.client.get("/movies/").text.contains("Stale since")
            }
            #expect(marked != nil, "\(behaviour)")
            let page = try await stack.client.get("/movies/")
            #expect(page.status == 200)
            #expect(MoviesPageReader.rows(page.text).count == 22)
            #expect(page.header("Cache-Control") == "public, max-age=0")
            let json = try await stack.client.get("/api/v1/movies")
            #expect(json.json()?["stale"] as? Bool == true)
            #expect(json.json()?["staleSince"] is String)
            #expect(Self.movies(json).count == 22)
            let health = try await stack.client.get("/api/v1/health")
            #expect(health.status == 200)
            #expect(health.json()?["status"] as? String == "degraded")
            #expect(((health.json()?["degraded"] as? [String: Any])?["movies"] as? String)?.contains("stale") == true)

            fake.loadFixtures()
            let recovered = try await waitUntil(timeout: .seconds(20)) {
                try await stack.client.get("/api/v1/movies").json()?["stale"] as? Bool == false
            }
            #expect(recovered != nil)
        }
        let status = try await stack.client.get("/api/v1/status")
        let refresh = ((status.json()?["features"] as? [String: Any])?["movies"] as? [String: Any])?["refresh"] as? [String: Any]
        #expect((refresh?["failed"] as? Int ?? 0) >= 2)
        #expect((refresh?["succeeded"] as? Int ?? 0) >= 3)
        #expect(refresh?["leaderPid"] is Int)
    }

    @Test("a title with a script tag is shown as text")
    func escapesScript() async throws {
        fake.set("/films", .json(Self.films(retitling: 0, as: "<script>alert(1)</script>")))
        let stack = try await stack("movies-xss", refreshSeconds: "50")
        defer { stack.stop() }
        let page = try await stack.client.get("/movies/")
        #expect(page.status == 200)
        #expect(!page.text.contains("<script>"))
        #expect(page.text.contains("<cite>&lt;script&gt;alert(1)&lt;/script&gt;</cite>"))
        let json = try await stack.client.get("/api/v1/movies")
        #expect(Self.movies(json).contains { $0["title"] as? String == "<script>alert(1)</script>" })
    }

    @Test("a matching If-None-Match gets 304 without a body; another gets the page")
    func notModified() async throws {
        let stack = try await stack("movies-etag", refreshSeconds: "50")
        defer { stack.stop() }
        for path in ["/movies/", "/api/v1/movies"] {
            let first = try await stack.client.get(path)
            let etag = try #require(first.header("ETag"))
            let again = try await stack.client.get(path, headers: ["If-None-Match": etag])
            #expect(again.status == 304, "\(path)")
            #expect(again.body.isEmpty)
            #expect(again.header("ETag") == etag)
            let other = try await stack.client.get(path, headers: ["If-None-Match": "\"something-else\""])
            #expect(other.status == 200)
            #expect(other.body == first.body)
        }
    }

    @Test("100 simultaneous first loads on an empty store make one fetch of /films and one of /people")
    func simultaneousFirstLoads() async throws {
        // The answer comes late, so that every load arrives while the store is still empty.
        fake.set("/films", .late(.seconds(3), then: .json(MoviesCatalogueTests.films)))
        let stack = try await stack("movies-first", refreshSeconds: "50", environment: ["MARQUEE_UPSTREAM_TIMEOUT": "10"])
        defer { stack.stop() }
        let answers = await withTaskGroup(of: (Int, Int).self) { group in
            for index in 0..<100 {
                group.addTask {
                    let path = index % 2 == 0 ? "/movies/" : "/api/v1/movies"
                    guard let answer = try? await stack.client.get(path) else { return (0, 0) }
                    let films = path == "/movies/" ? MoviesPageReader.rows(answer.text).count : Self.movies(answer).count
                    return (answer.status, films)
                }
            }
            return await group.reduce(into: [(Int, Int)]()) { $0.append($1) }
        }
        #expect(answers.count == 100)
        #expect(answers.allSatisfy { $0 == (200, 22) }, "\(answers.filter { $0 != (200, 22) })")
        #expect(fake.calls("/films") == 1)
        #expect(fake.calls("/people") == 1)
    }

    @Test("before any successful load: 503 with Retry-After, an HTML page for /movies/ and JSON for the API")
    func emptyStoreAnswers503() async throws {
        fake.set("/films", .status(500, Array("{}".utf8)))
        let stack = try await stack("movies-empty", refreshSeconds: "50")
        defer { stack.stop() }
        let page = try await stack.client.get("/movies/")
        #expect(page.status == 503)
        #expect(page.header("Content-Type") == "text/html; charset=utf-8")
        #expect(page.text.contains("<meta charset=\"utf-8\">"))
        #expect(page.text.contains("not been loaded yet"))
        #expect(Int(page.header("Retry-After") ?? "") != nil)
        let json = try await stack.client.get("/api/v1/movies")
        #expect(json.status == 503)
        #expect(json.errorCode == "movies_unavailable")
        #expect(Int(json.header("Retry-After") ?? "") != nil)
        let status = try await stack.client.get("/api/v1/status")
        let refresh = ((status.json()?["features"] as? [String: Any])?["movies"] as? [String: Any])?["refresh"] as? [String: Any]
        #expect((refresh?["lastError"] as? String)?.contains("HTTP 500") == true)

        fake.loadFixtures()
        let loaded = try await waitUntil(timeout: .seconds(15)) { try await stack.client.get("/api/v1/movies").status == 200 }
        #expect(loaded != nil, "the next attempt loads once the upstream answers")
    }

    @Test("kill -9 of the leader: another worker takes the lead over and keeps the data fresh")
    func leaderTakeover() async throws {
        let stack = try await stack("movies-leader", workers: 2)
        defer { stack.stop() }
        #expect(try await stack.client.get("/movies/").status == 200)
        func leader() async throws -> Int? {
            let status = try await stack.client.get("/api/v1/status")
            let refresh = ((status.json()?["features"] as? [String: Any])?["movies"] as? [String: Any])?["refresh"] as? [String: Any]
            return refresh?["leaderPid"] as? Int
        }
        let first = try #require(try await leader())
        let victim = try #require(stack.workers.first { Int($0.pid) == first })
        victim.signal(SIGKILL)
        _ = victim.waitForExit(timeout: .seconds(5))

        fake.set("/films", .json(Self.films(retitling: 0, as: "Castle in the Sky, after the takeover")))
        let shown = try await waitUntil(timeout: .seconds(20)) {
            try await stack.client.get("/movies/").text.contains("Castle in the Sky, after the takeover")
        }
        #expect(shown != nil)
        let next = try await leader()
        #expect(next != nil && next != first)
    }
}
