import Foundation
@testable import Marquee
import Testing

/// The catalogue, its visits, `marquee videos import` and the built-in local CDN, through a
/// real nginx and real workers.
@Suite("Video catalogue", .serialized)
struct VideoCatalogueTests {
    static let admin = ["Authorization": "Bearer \(Stack.adminToken)"]

    @Test("import, read, visits with the client address, admin upsert, and minting for the local nginx", arguments: StorageMode.allCases)
    func catalogueAndVisits(_ storage: StorageMode) async throws {
        let stack = try await Stack("video-catalogue", workers: 2, environment: [
            "MARQUEE_TRUSTED_PROXIES": "127.0.0.1",
            "MARQUEE_SECURE_LINK_SECRET": Stack.secureLinkSecret,
        ], storage: storage)
        defer { stack.stop() }
        var storeEnvironment = ["MARQUEE_STORE_DIR": stack.directory.appendingPathComponent("store").path, "MARQUEE_STORE_MAX_MB": "256"]
        if let postgres = stack.postgres { storeEnvironment["MARQUEE_DATABASE_URL"] = postgres.url }

        let fixture = VideoFixtures.directory.appendingPathComponent("video-12345.json").path
        let importer = try ChildProcess("import", executable: TestPaths.marquee, arguments: ["videos", "import", fixture],
                                        environment: storeEnvironment, logDirectory: stack.directory)
        #expect(importer.waitForExit(timeout: .seconds(20)) == 0)
        #expect(importer.log.contains("imported 1 video"), "\(importer.log)")
        if let postgres = stack.postgres {
            #expect(try postgres.psql("SELECT body::json->>'title' FROM videos WHERE video_id = '12345'") == "Big Buck Bunny")
        }

        let read = try await stack.client.get("/video/12345", headers: ["User-Agent": "catalogue-test/1"])
        #expect(read.status == 200)
        let expected = try JSONSerialization.jsonObject(with: VideoFixtures.data("video-12345.json")) as? NSDictionary
        var answered = try #require(read.json())
        // Imported without an `_id`, it is answered with its generated one (LegacyVideoServiceTests).
        let generatedId = try #require(answered.removeValue(forKey: "_id") as? String)
        #expect(generatedId.utf8.count == 24 && generatedId.allSatisfy(\.isHexDigit))
        #expect(NSDictionary(dictionary: answered) == expected)
        let nginxRequestId = try #require(read.header("X-Request-Id"))
        let forwarded = try await stack.client.get("/video/12345", headers: ["User-Agent": "catalogue-test/2", "X-Forwarded-For": "198.51.100.4, 203.0.113.7",
                                                                             "X-Request-Id": "chosen-by-the-client"])
        #expect(forwarded.status == 200)
        let head = try await stack.client.request("HEAD", "/video/12345", headers: ["User-Agent": "catalogue-test/head"])
        #expect(head.status == 200)
        let unknown = try await stack.client.get("/video/54321")
        #expect(unknown.status == 404)
        #expect(unknown.errorCode == "not_found")

        // Admin upsert.
        let body = Data(#"{"title": "Sintel", "sources": [{"src": "/sintel-720.mp4", "size": 720, "type": "video/mp4"}]}"#.utf8)
        #expect(try await stack.client.request("PUT", "/api/v1/videos/sintel", body: body).status == 401)
        let created = try await stack.client.request("PUT", "/api/v1/videos/sintel", headers: Self.admin, body: body)
        #expect(created.status == 201)
        #expect(created.json()?["videoId"] as? String == "sintel")
        #expect(try await stack.client.request("PUT", "/api/v1/videos/sintel", headers: Self.admin, body: body).status == 200)
        let mismatch = try await stack.client.request("PUT", "/api/v1/videos/sintel", headers: Self.admin,
                                                      body: Data(#"{"videoId": "other", "title": "t", "sources": [{"src": "/a", "size": 1, "type": "v"}]}"#.utf8))
        #expect(mismatch.status == 400)
        #expect(mismatch.errorCode == "invalid_body")
        let badId = try await stack.client.request("PUT", "/api/v1/videos/token", headers: Self.admin, body: body)
        #expect(badId.status == 400)
        #expect(try await stack.client.get("/video/sintel").json()?["title"] as? String == "Sintel")

        // The consumer moves the two GETs of 12345 (not the HEAD) and the one of sintel.
        try await Self.waitUntilDrained(stack)
        let visits = try await stack.client.get("/api/v1/videos/12345/visits", headers: Self.admin)
        #expect(visits.status == 200)
        #expect(visits.json()?["count"] as? Int == 2)
        let recent = try #require(visits.json()?["recent"] as? [[String: Any]])
        #expect(recent.map { $0["userAgent"] as? String } == ["catalogue-test/2", "catalogue-test/1"])
        #expect(recent.map { $0["ip"] as? String } == ["203.0.113.7", "127.0.0.1"], "X-Forwarded-For counts from a trusted proxy only")
        #expect((recent.first?["at"] as? String)?.hasSuffix("Z") == true)
        // Named by nginx's own request id, which a retry on another worker repeats; never by a client's.
        let visitIds = recent.compactMap { $0["visitId"] as? String }
        #expect(visitIds.count == 2 && visitIds[1].hasSuffix("-" + nginxRequestId), "\(visitIds), \(nginxRequestId)")
        #expect(!visitIds[0].contains("chosen-by-the-client") && visitIds[0].split(separator: "-").last?.utf8.count == 32, "\(visitIds)")
        #expect(try await stack.client.get("/api/v1/videos/12345/visits").status == 401)
        #expect(try await stack.client.get("/api/v1/videos/54321/visits", headers: Self.admin).status == 404)
        #expect(try await stack.client.get("/api/v1/videos/12345/visits?limit=1", headers: Self.admin).json().flatMap { $0["recent"] as? [Any] }?.count == 1)
        #expect(try await stack.client.get("/api/v1/videos/12345/visits?limit=1000", headers: Self.admin).status == 400)
        if let postgres = stack.postgres {
            #expect(try postgres.psql("SELECT video_id || '=' || count FROM video_visit_counts ORDER BY video_id") == "12345=2\nsintel=1")
            #expect(try postgres.psql("SELECT count(*) FROM video_visits") == "3")
        }

        // Without a CDN file, MARQUEE_SECURE_LINK_SECRET signs for this nginx's /media/secure/.
        let media = stack.directory.appendingPathComponent("media/secure")
        try FileManager.default.createDirectory(at: media, withIntermediateDirectories: true)
        let movie = Data("bunny".utf8)
        for path in VideoFixtures.legacySources.values { try movie.write(to: media.appendingPathComponent(String(path.dropFirst()))) }
        let minted = try await stack.client.request("POST", "/video/token", body: Data(#"{"videoId": "12345"}"#.utf8))
        #expect(minted.status == 200)
        let urls = (minted.json()?["sources"] as? [[String: Any]])?.compactMap { $0["src"] as? String } ?? []
        #expect(urls.count == 2)
        for url in urls {
            #expect(url.hasPrefix("/media/secure/Big_Buck_Bunny_"))
            #expect(try await stack.client.get(url).body == movie)
        }

        let status = try await stack.client.get("/api/v1/status")
        let section = try #require((status.json()?["features"] as? [String: Any])?["videos"] as? [String: Any])
        let figures = try #require(section["visits"] as? [String: Any])
        #expect(figures["queued"] as? Int == 0)
        #expect(figures["moved"] as? Int == 3)
        #expect((figures["consumer"] as? String)?.contains("@") == true)
        #expect((section["tokensMinted"] as? [String: Any]).map { $0.keys.sorted() } == ["hmac-sha256", "md5-legacy", "nginx-secure-link"])
    }

    @Test("an import with a problem anywhere stores nothing and names each problem")
    func importRefusesBadFiles() async throws {
        let directory = TestPaths.temporaryDirectory("video-import")
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("videos.json")
        try #"""
            [{"videoId": "good", "title": "Good", "sources": [{"src": "/good.mp4", "size": 1, "type": "video/mp4"}]},
             {"videoId": "bad", "title": "Bad", "sources": [{"src": "bad.mp4", "size": "big", "type": "video/mp4"}]}]
            """#.write(to: file, atomically: true, encoding: .utf8)
        let environment = ["MARQUEE_STORE_DIR": directory.appendingPathComponent("store").path]
        let refused = try ChildProcess("import-bad", executable: TestPaths.marquee, arguments: ["videos", "import", file.path],
                                       environment: environment, logDirectory: directory)
        #expect(refused.waitForExit(timeout: .seconds(20)) == 1)
        #expect(refused.log.contains("[1].sources[0].src: must start with /"), "\(refused.log)")
        #expect(refused.log.contains("[1].sources[0].size: must be a whole number"), "\(refused.log)")
        #expect(refused.log.contains("nothing imported"))

        let scan = try ChildProcess("scan", executable: TestPaths.marquee, arguments: ["store", "scan", "videos/"],
                                    environment: environment, logDirectory: directory)
        #expect(scan.waitForExit(timeout: .seconds(20)) == 0)
        #expect(!scan.log.contains("videos/catalogue/good"))
    }

    @Test("without any CDN, minting answers 503 no_cdn_configured")
    func noCDN() async throws {
        let stack = try await Stack("video-nocdn", workers: 2)
        defer { stack.stop() }
        let answer = try await stack.client.request("POST", "/video/token", body: try VideoFixtures.data("token-request.json"))
        #expect(answer.status == 503)
        #expect(answer.errorCode == "no_cdn_configured")
        #expect(try await stack.client.get("/api/v1/health").json()?["status"] as? String == "ok")
    }

    @Test("sixteen concurrent first PUTs of one video across the workers: exactly one 201, one _id", arguments: StorageMode.allCases)
    func concurrentCreation(_ storage: StorageMode) async throws {
        let stack = try await Stack("video-create-race", workers: 2, storage: storage)
        defer { stack.stop() }
        let client = stack.client
        let body = Data(#"{"title": "Race", "sources": [{"src": "/race.mp4", "size": 720, "type": "video/mp4"}]}"#.utf8)
        let statuses = await concurrently(16, width: 16) { _ in
            (try? await client.request("PUT", "/api/v1/videos/race", headers: Self.admin, body: body).status) ?? 0
        }
        #expect(statuses.filter { $0 == 201 }.count == 1, "\(statuses)")
        #expect(statuses.allSatisfy { $0 == 200 || $0 == 201 }, "\(statuses)")
        #expect(try await client.get("/video/race").json()?["_id"] as? String == Video.generatedLegacyId(for: "race"))
    }

    @Test("with a database, visits wait in the host's outbox while their move fails, and move once it works: each counted once")
    func visitsWaitForTheDatabase() async throws {
        let stack = try await Stack("video-visits-wait", workers: 2, environment: ["MARQUEE_DATABASE_STATEMENT_TIMEOUT": "1"], storage: .postgres)
        defer { stack.stop() }
        let postgres = try #require(stack.postgres)
        #expect(try await VideoVisitsLoadTests.catalogueVideo12345(stack) == 201)

        // A database that does not answer the mover: its counts table locked for a while. Reads do not need it.
        let lock = try ChildProcess("lock", executable: PostgresServer.binaries + "/psql",
                                    arguments: ["-X", "-d", postgres.url, "-c", "BEGIN; LOCK TABLE video_visit_counts; SELECT pg_sleep(6); COMMIT;"],
                                    logDirectory: stack.directory)
        defer { lock.stop() }
        #expect(try await eventually(within: .seconds(10)) {
            try postgres.psql("SELECT count(*) FROM pg_locks WHERE relation = 'video_visit_counts'::regclass AND granted") != "0"
        })
        for index in 0..<20 {
            #expect(try await stack.client.get("/video/12345", headers: ["User-Agent": "waiting/\(index)"]).status == 200)
        }
        try await Task.sleep(for: .seconds(2.5))
        let waiting = try await stack.client.get("/api/v1/status")
        let figures = ((waiting.json()?["features"] as? [String: Any])?["videos"] as? [String: Any])?["visits"] as? [String: Any]
        #expect(figures?["queued"] as? Int == 20, "\(figures ?? [:])")

        #expect(lock.waitForExit(timeout: .seconds(20)) == 0, "\(lock.log)")
        try await Self.waitUntilDrained(stack)
        let visits = try await stack.client.get("/api/v1/videos/12345/visits?limit=100", headers: Self.admin)
        #expect(visits.json()?["count"] as? Int == 20)
        #expect((visits.json()?["recent"] as? [Any])?.count == 20)
        let logs = stack.workers.map(\.log).joined()
        #expect(logs.components(separatedBy: "moving visits failed").count - 1 == 1, "one warning for the whole outage")
        #expect(logs.contains("moving visits works again"))
    }

    /// Waits until the outbox is empty pool-wide.
    static func waitUntilDrained(_ stack: Stack, timeout: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let status = try? await stack.client.get("/api/v1/status")
            let visits = ((status?.json()?["features"] as? [String: Any])?["videos"] as? [String: Any])?["visits"] as? [String: Any]
            if let queued = visits?["queued"] as? Int, queued == 0 { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw StackError("the visits outbox did not drain within \(timeout)")
    }
}
