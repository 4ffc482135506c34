import Foundation
import LMDBStore
@testable import Marquee
import PostgresClient
import Testing

/// The PostgreSQL system of record: migrations, the schema check, and a database that goes away
/// and comes back under running workers. Each test starts its own PostgreSQL.
@Suite("Database", .serialized)
struct DatabaseTests {
    private static func marquee(_ arguments: [String], _ name: String, url: String, in directory: URL) throws -> ChildProcess {
        try ChildProcess(name, executable: TestPaths.marquee, arguments: arguments,
                         environment: ["MARQUEE_DATABASE_URL": url], logDirectory: directory)
    }

    /// A PostgreSQL migrated by `marquee db migrate`, for an import test to copy a store into.
    private static func importTarget(_ label: String, in directory: URL) throws -> PostgresServer {
        let postgres = try PostgresServer(label)
        let migrate = try marquee(["db", "migrate"], "migrate", url: postgres.url, in: directory)
        #expect(migrate.waitForExit(timeout: .seconds(60)) == 0, "\(migrate.log)")
        return postgres
    }

    /// `marquee db import-store` of the store in `store` into `postgres`, started.
    private static func importStore(_ store: String, into postgres: PostgresServer, _ name: String, in directory: URL) throws -> ChildProcess {
        try ChildProcess(name, executable: TestPaths.marquee, arguments: ["db", "import-store", "--store-dir", store],
                         environment: ["MARQUEE_DATABASE_URL": postgres.url, "MARQUEE_STORE_MAX_MB": "64"], logDirectory: directory)
    }

    @Test("ten `marquee db migrate` at once apply each migration once; `db status` shows the version")
    func concurrentMigrations() throws {
        let postgres = try PostgresServer("migrate")
        defer { postgres.remove() }
        let logs = TestPaths.temporaryDirectory("db-migrate")
        defer { try? FileManager.default.removeItem(at: logs) }

        let before = try Self.marquee(["db", "status"], "status-before", url: postgres.url, in: logs)
        #expect(before.waitForExit(timeout: .seconds(30)) == 3, "status before migrating: \(before.log)")
        #expect(before.log.contains("schema version 0"))

        let migrations = (0..<10).map { index in Result { try Self.marquee(["db", "migrate"], "migrate-\(index)", url: postgres.url, in: logs) } }
        var appliedLines = 0
        for case .success(let process) in migrations {
            #expect(process.waitForExit(timeout: .seconds(60)) == 0, "\(process.log)")
            appliedLines += process.log.split(separator: "\n").filter { $0.hasPrefix("applied ") }.count
        }
        #expect(migrations.allSatisfy { (try? $0.get()) != nil })
        let known = try postgres.psql("SELECT count(*) FROM schema_migrations")
        let distinct = try postgres.psql("SELECT count(DISTINCT version) FROM schema_migrations")
        #expect(Int(known) ?? -1 >= 1)
        #expect(known == distinct)
        // Each migration was applied by exactly one of the ten.
        #expect(appliedLines == Int(known))

        let after = try Self.marquee(["db", "status"], "status-after", url: postgres.url, in: logs)
        #expect(after.waitForExit(timeout: .seconds(30)) == 0, "\(after.log)")
        // The version is the newest migration's number, not how many there are: numbers may have gaps.
        let newest = try postgres.psql("SELECT max(version) FROM schema_migrations")
        #expect(after.log.contains("schema version \(newest), this marquee knows \(newest)"), "\(after.log)")
        // The URL is printed without the password.
        let secret = try Self.marquee(["db", "status"], "status-secret", url: postgres.url + "&password=hunter2-secret", in: logs)
        _ = secret.waitForExit(timeout: .seconds(30))
        #expect(!secret.log.contains("hunter2-secret"))
        #expect(secret.log.contains("password=***"))
    }

    @Test("a worker refuses a schema older or newer than it knows, with one line and a non-zero exit")
    func refusesOtherSchemas() throws {
        let postgres = try PostgresServer("schema")
        defer { postgres.remove() }
        let directory = TestPaths.temporaryDirectory("db-schema")
        defer { try? FileManager.default.removeItem(at: directory) }

        func serve(_ name: String) throws -> ChildProcess {
            try ChildProcess(name, executable: TestPaths.marquee,
                             arguments: ["serve", "--listen", directory.appendingPathComponent("\(name).sock").path],
                             environment: ["MARQUEE_DATABASE_URL": postgres.url,
                                           "MARQUEE_STORE_DIR": directory.appendingPathComponent("store").path,
                                           "MARQUEE_STORE_MAX_MB": "64", "MARQUEE_GHIBLI_BASE_URL": "http://127.0.0.1:9"],
                             logDirectory: directory)
        }

        let unmigrated = try serve("older")
        let older = unmigrated.waitForExit(timeout: .seconds(30))
        #expect(older != nil && older != 0)
        #expect(unmigrated.log.components(separatedBy: "marquee db migrate").count - 1 == 1, "\(unmigrated.log)")

        let migrate = try Self.marquee(["db", "migrate"], "migrate", url: postgres.url, in: directory)
        #expect(migrate.waitForExit(timeout: .seconds(60)) == 0)
        try postgres.psql("INSERT INTO schema_migrations (version, name) VALUES (9999, 'from_the_future')")
        let outdated = try serve("newer")
        let newer = outdated.waitForExit(timeout: .seconds(30))
        #expect(newer != nil && newer != 0)
        #expect(outdated.log.components(separatedBy: "newer than this marquee knows").count - 1 == 1, "\(outdated.log)")

        try postgres.psql("DELETE FROM schema_migrations WHERE version = 9999")
        let current = try serve("current")
        defer { current.stop() }
        #expect(current.waitForExit(timeout: .seconds(3)) == nil, "a worker on the current schema keeps serving: \(current.log)")
    }

    @Test("`db migrate` of a database at version 5 moves its leases into the users' rows; an expired one is pruned by the next grant")
    func leasesMoveIntoTheUserRow() throws {
        let postgres = try PostgresServer("migrate-leases")
        defer { postgres.remove() }
        let logs = TestPaths.temporaryDirectory("db-migrate-leases")
        defer { try? FileManager.default.removeItem(at: logs) }
        let migrations = TestPaths.repository.appendingPathComponent("Sources/Marquee/Database/Migrations")
        let files = try FileManager.default.contentsOfDirectory(atPath: migrations.path).sorted().filter { $0.hasSuffix(".sql") }
        try postgres.psql("CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
        for file in files.prefix(5) {
            try postgres.psql(String(contentsOf: migrations.appendingPathComponent(file), encoding: .utf8))
            try postgres.psql("INSERT INTO schema_migrations (version, name) VALUES (\(Int(file.prefix(4))!), '\(file)')")
        }
        try postgres.psql("INSERT INTO users (id, name, subscription, created_at) VALUES ('u1', 'U', 'Basic', 0), ('u2', 'V', 'Basic', 0)")
        for (stream, lease) in [("Film-A", 60_000), ("film-b", 60_000), ("film-c", 1)] {
            try postgres.psql("SELECT count(*) FROM stream_grant('u1', '\(stream)', \(lease), 3, '{}', '{}')")
        }

        let migrate = try Self.marquee(["db", "migrate"], "migrate", url: postgres.url, in: logs)
        #expect(migrate.waitForExit(timeout: .seconds(60)) == 0, "\(migrate.log)")
        #expect(try postgres.psql("SELECT to_regclass('user_streams') IS NULL") == "t")
        #expect(try postgres.psql("SELECT string_agg(s.key || '/' || s.stream, ',' ORDER BY s.started_at) FROM users u, unnest(u.streams) s WHERE u.id = 'u1'")
                == "film-a/Film-A,film-b/film-b,film-c/film-c")
        #expect(try postgres.psql("SELECT cardinality(streams) FROM users WHERE id = 'u2'") == "0")
        // The expired lease makes room: the limit is 3 and two are live.
        #expect(try postgres.psql("SELECT string_agg(outcome || ':' || lease_stream, ',') FROM stream_grant('u1', 'film-d', 60000, 3, '{}', '{}')")
                == "granted:Film-A,granted:film-b,granted:film-d")
        #expect(try postgres.psql("SELECT outcome FROM stream_touch('u1', 'FILM-A', 0)") == "done")
        #expect(try postgres.psql("SELECT string_agg(s.stream, ',') FROM users u, unnest(u.streams) s WHERE u.id = 'u1'") == "film-b,film-d")
    }

    @Test("a transaction begun on a connection a restart closed runs on a new one, and a failure in it still rolls it back")
    func transactionAfterRestart() throws {
        // Synchronous throughout: the client keeps one connection per thread, and this test
        // must meet its own connection again after the restart.
        let postgres = try PostgresServer("tx-restart")
        defer { postgres.remove() }
        try postgres.psql("CREATE TABLE restart_probe (id integer PRIMARY KEY)")
        let client = PostgresClient(configuration: PostgresConfiguration(url: postgres.url))
        let insert = PostgresStatement("restart_probe_insert", "INSERT INTO restart_probe VALUES ($1::integer)")
        try client.execute(insert, ["1"])
        postgres.stop()
        try postgres.start()

        #expect(throws: PostgresError.self) {
            try client.transaction { connection in
                try connection.execute(insert, ["2"])
                try connection.execute(insert, ["1"])
            }
        }
        // Rolled back, and the connection is not left inside the failed transaction.
        try client.execute(insert, ["3"])
        #expect(try postgres.psql("SELECT string_agg(id::text, ',' ORDER BY id) FROM restart_probe") == "1,3")
    }

    @Test("PostgreSQL stopped: writes and video reads 503 database_unavailable within the timeout, cached reads 200, health degraded; back without a worker restart")
    func databaseDown() async throws {
        let fake = try FakeUpstream()
        defer { fake.stop() }
        let stack = try await Stack("db-down", workers: 2, environment: [
            "MARQUEE_GHIBLI_BASE_URL": fake.baseURL,
            "MARQUEE_DATABASE_STATEMENT_TIMEOUT": "1",
        ], storage: .postgres)
        defer { stack.stop() }
        let postgres = try #require(stack.postgres)
        let pids = stack.workers.map(\.pid)

        #expect(try await stack.createUser("down-1").status == 201)
        #expect(try await stack.grant("down-1", "before").status == 201)
        let video = Data(#"{"title": "Down", "sources": [{"src": "/down-720.mp4", "size": 720, "type": "video/mp4"}]}"#.utf8)
        #expect(try await stack.admin("PUT", "/api/v1/videos/down", json: try JSONSerialization.jsonObject(with: video)).status == 201)
        #expect(try await stack.client.get("/video/down").status == 200)
        #expect(try await stack.client.get("/api/v1/movies").status == 200)
        #expect(try await stack.client.get("/movies/").status == 200)

        postgres.stop()
        var writes: [(status: Int, code: String?, elapsed: Duration)] = []
        var videoReads: [(status: Int, code: String?, elapsed: Duration)] = []
        var cached: [Int] = []
        var healthDegraded = false
        let outage = ContinuousClock.now
        while ContinuousClock.now - outage < .seconds(5) {
            let started = ContinuousClock.now
            let answer = try await stack.grant("down-1", "during-\(writes.count)")
            writes.append((answer.status, answer.errorCode, ContinuousClock.now - started))
            // The catalogue is a record of the database too: its reads wait for it like writes.
            let read = try await stack.client.get("/video/down")
            videoReads.append((read.status, read.errorCode, ContinuousClock.now - started))
            for path in ["/api/v1/movies", "/movies/", "/api/v1/health"] {
                cached.append(try await stack.client.get(path).status)
            }
            let health = try await stack.client.get("/api/v1/health")
            if health.json()?["status"] as? String == "degraded",
               ((health.json()?["degraded"] as? [String: Any])?["database"] as? String)?.contains("unavailable") == true {
                healthDegraded = true
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(writes.count >= 3)
        #expect(writes.allSatisfy { $0.status == 503 && $0.code == "database_unavailable" }, "\(writes.map { "\($0.status) \($0.code ?? "-")" })")
        // The statement timeout is 1 s; the bound leaves room for a loaded machine.
        let slowest = writes.map(\.elapsed).max() ?? .zero
        #expect(slowest < .seconds(4), "slowest refused write took \(slowest)")
        #expect(videoReads.allSatisfy { $0.status == 503 && $0.code == "database_unavailable" }, "\(videoReads.map { "\($0.status) \($0.code ?? "-")" })")
        // Measured from before the grant: a grant and a read, each within the timeout.
        #expect((videoReads.map(\.elapsed).max() ?? .zero) < .seconds(8))
        #expect(cached.allSatisfy { $0 == 200 }, "cached answers during the outage: \(cached.filter { $0 != 200 })")
        #expect(healthDegraded)

        try postgres.start()
        let recovered = ContinuousClock.now
        var status = 0
        while ContinuousClock.now - recovered < .seconds(20) {
            status = try await stack.grant("down-1", "after").status
            if status == 201 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(status == 201)
        #expect(try await stack.activeStreams("down-1")?.sorted() == ["after", "before"])
        // Every request thread's connection reconnects at once now, not after its own backoff.
        for _ in 0..<8 {
            let read = try await stack.client.get("/video/down")
            #expect(read.status == 200, "a video read right after the first write succeeded: \(read.status) \(read.errorCode ?? "-")")
        }
        #expect(try await eventually(within: .seconds(10)) {
            try await stack.client.get("/api/v1/health").json()?["status"] as? String == "ok"
        })
        #expect(stack.workers.map(\.pid) == pids)
        #expect(stack.workers.allSatisfy { $0.isRunning })
    }

    @Test("db import-store copies an embedded store's users with their streams, and a second run copies nothing")
    func importStore() throws {
        let directory = TestPaths.temporaryDirectory("db-import")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = directory.appendingPathComponent("store")
        // A store made by this version, the way an operator fills one.
        let filled = try ChildProcess("users-import", executable: TestPaths.marquee, arguments: ["users", "import", UsersImportTests.fixture.path],
                                      environment: ["MARQUEE_STORE_DIR": store.path, "MARQUEE_STORE_MAX_MB": "64"], logDirectory: directory)
        #expect(filled.waitForExit(timeout: .seconds(30)) == 0, "\(filled.log)")

        let postgres = try Self.importTarget("import", in: directory)
        defer { postgres.remove() }
        func importStore(_ name: String) throws -> ChildProcess {
            try Self.importStore(store.path, into: postgres, name, in: directory)
        }
        let first = try importStore("import-1")
        #expect(first.waitForExit(timeout: .seconds(60)) == 0, "\(first.log)")
        #expect(first.log.contains("users: 3 copied, 0 skipped"), "\(first.log)")
        #expect(try postgres.psql("SELECT string_agg(id, ',' ORDER BY sequence) FROM users") == "001,002,192688f0-60be-11ea-a428-b7b3360c9a09")
        #expect(try postgres.psql("SELECT name || '/' || subscription FROM users WHERE id = '001'") == "Mohamed Sheikh/Basic Plan")
        #expect(try postgres.psql("SELECT string_agg(s.stream, ',' ORDER BY s.stream) FROM users u, unnest(u.streams) s WHERE u.id = '001'") == "stream_2,stream_3,stream_9")
        #expect(try postgres.psql("SELECT string_agg(s.stream, ',' ORDER BY s.stream) FROM users u, unnest(u.streams) s WHERE u.id = '002'") == "stream_2,stream_4")

        let second = try importStore("import-2")
        #expect(second.waitForExit(timeout: .seconds(60)) == 0, "\(second.log)")
        #expect(second.log.contains("users: 0 copied, 3 skipped"), "\(second.log)")
        #expect(try postgres.psql("SELECT count(*) FROM users") == "3")
        #expect(try postgres.psql("SELECT sum(cardinality(streams)) FROM users") == "5")
    }

    @Test("db import-store copies an embedded store's queued and parked content events, and a second run copies nothing")
    func importContentEvents() throws {
        let directory = TestPaths.temporaryDirectory("db-import-events")
        defer { try? FileManager.default.removeItem(at: directory) }
        let storePath = directory.appendingPathComponent("store").path
        // A host's queue as its consumer leaves it: one waiting, one backing off, one parked.
        let queue = LMDBContentEventQueue(store: try Store.open(StoreOptions(directory: storePath, maxBytes: 64 << 20)))
        let urls = ["waiting-2020", "retried-2021", "parked-2022"].map { "https://content.viaplay.se/pc-se/film/\($0)" }
        #expect(try queue.enqueue(try urls.map { try FilmURL.parse($0, policy: FilmURLPolicy()) }) == [.queued, .queued, .queued])
        let due = try queue.claimDue(limit: 64, claimFor: .seconds(1))
        try queue.failed(try #require(due.first { $0.url == urls[1] }), error: "viaplay timeout", maxAttempts: 5, backoff: .seconds(60))
        #expect(try queue.failed(try #require(due.first { $0.url == urls[2] }), error: "viaplay 503", maxAttempts: 1, backoff: .zero))

        let postgres = try Self.importTarget("import-events", in: directory)
        defer { postgres.remove() }
        func importStore(_ name: String) throws -> ChildProcess {
            try Self.importStore(storePath, into: postgres, name, in: directory)
        }
        let rows = """
            SELECT string_agg(url || ' ' || attempts || ' ' || (parked_at IS NOT NULL) || ' ' || coalesce(last_error, '-')
                              || ' ' || (next_at > now() + interval '30 seconds'), ',' ORDER BY queued_at, url)
            FROM content_events
            """
        let expected = [
            "\(urls[2]) 1 true viaplay 503 false", "\(urls[1]) 1 false viaplay timeout true", "\(urls[0]) 0 false - false",
        ].sorted().joined(separator: ",")

        let first = try importStore("import-1")
        #expect(first.waitForExit(timeout: .seconds(60)) == 0, "\(first.log)")
        #expect(first.log.contains("content events: 3 copied, 0 skipped"), "\(first.log)")
        #expect(try postgres.psql(rows).split(separator: ",").sorted().joined(separator: ",") == expected)

        let second = try importStore("import-2")
        #expect(second.waitForExit(timeout: .seconds(60)) == 0, "\(second.log)")
        #expect(second.log.contains("content events: 0 copied, 3 skipped"), "\(second.log)")
        #expect(try postgres.psql("SELECT count(*) FROM content_events") == "3")
    }

    @Test("db import-store copies an embedded store's videos, moved visits and outbox visits, and a second run copies nothing")
    func importStoreVideos() throws {
        let directory = TestPaths.temporaryDirectory("db-import-videos")
        defer { try? FileManager.default.removeItem(at: directory) }
        let storeDirectory = directory.appendingPathComponent("store")
        // A store made by this version: two videos, 120 visits of `a` moved (100 kept), four waiting.
        // Opened once: LMDB must not open one environment twice in a process.
        let store = try Store.open(StoreOptions(directory: storeDirectory.path, maxBytes: 64 << 20))
        let outbox = VisitOutbox(store: store)
        try LMDBVideoCatalogue(store: store).save(try VideoImport.parse(Data(#"""
            [{"videoId": "a", "title": "A", "sources": [{"src": "/a.mp4", "size": 720, "type": "video/mp4"}]},
             {"_id": "6213a7299fa2604f1b188ee0", "videoId": "b", "title": "B", "sources": [{"src": "/b.mp4", "size": 720, "type": "video/mp4"}]}]
            """#.utf8)))
        for index in 0..<120 {
            try outbox.append(Visit(videoId: "a", ip: "192.0.2.1", userAgent: "moved/\(index)", at: 1_000 + UInt64(index)))
        }
        while try outbox.moveBatch(limit: 500).total > 0 {}
        for index in 0..<3 {
            try outbox.append(Visit(videoId: "a", ip: "192.0.2.2", userAgent: "pending/\(index)", at: 2_000 + UInt64(index)))
        }
        try outbox.append(Visit(videoId: "b", ip: "192.0.2.3", userAgent: "pending-b", at: 2_000))

        let postgres = try Self.importTarget("import-videos", in: directory)
        defer { postgres.remove() }
        func importStore(_ name: String) throws -> ChildProcess {
            try Self.importStore(storeDirectory.path, into: postgres, name, in: directory)
        }

        let first = try importStore("import-1")
        #expect(first.waitForExit(timeout: .seconds(60)) == 0, "\(first.log)")
        #expect(first.log.contains("videos: 2 copied, 0 skipped"), "\(first.log)")
        #expect(first.log.contains("visit counts: 1 copied (120 visits, 100 kept in full), 0 skipped"), "\(first.log)")
        #expect(first.log.contains("outbox visits: 4 copied, 0 skipped"), "\(first.log)")
        #expect(try postgres.psql("SELECT video_id || '=' || (body->>'_id') FROM videos ORDER BY video_id")
                == "a=\(Video.generatedLegacyId(for: "a"))\nb=6213a7299fa2604f1b188ee0")
        #expect(try postgres.psql("SELECT video_id || '=' || count FROM video_visit_counts ORDER BY video_id") == "a=123\nb=1")
        #expect(try postgres.psql("SELECT count(*) FROM video_visits WHERE video_id = 'a'") == "100", "the newest 100 are kept")
        #expect(try postgres.psql("SELECT string_agg(user_agent, ',' ORDER BY at DESC, visit_id) FROM (SELECT * FROM video_visits WHERE video_id = 'a' ORDER BY at DESC LIMIT 4) v")
                == "pending/2,pending/1,pending/0,moved/119")

        let second = try importStore("import-2")
        #expect(second.waitForExit(timeout: .seconds(60)) == 0, "\(second.log)")
        #expect(second.log.contains("videos: 0 copied, 2 skipped"), "\(second.log)")
        #expect(second.log.contains("visit counts: 0 copied (0 visits, 0 kept in full), 1 skipped"), "\(second.log)")
        #expect(second.log.contains("outbox visits: 0 copied, 0 skipped"), "\(second.log)")
        #expect(try postgres.psql("SELECT video_id || '=' || count FROM video_visit_counts ORDER BY video_id") == "a=123\nb=1")
        #expect(try postgres.psql("SELECT count(*) FROM video_visits") == "101")
        #expect(try outbox.figures().queued == 0, "the outbox visits left the store with their move")
    }

    @Test("a batch the database committed but the outbox still holds (its mover died in between) counts once when sent again")
    func visitBatchSentTwice() throws {
        let (server, client) = try ClusterCoordinationTests.database("visits-twice")
        defer { server.remove() }
        let directory = TestPaths.temporaryDirectory("db-visits-twice")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try Store.open(StoreOptions(directory: directory.path, maxBytes: 64 << 20))
        let outbox = VisitOutbox(store: store)
        let visits = PostgresVisitStore(client: client)
        for index in 0..<150 {
            try outbox.append(Visit(videoId: "v", ip: "192.0.2.1", userAgent: "twice/\(index)", at: 1_000 + UInt64(index)))
        }

        // What a mover killed after the commit leaves behind: the claim in the store, the batch in the database.
        let claim = try #require(try outbox.claim(limit: 500))
        let added = try client.transaction { connection in
            guard try !connection.execute(PostgresVisitStore.Statement.claim, [claim.mover, String(claim.number)]).isEmpty else { return -1 }
            return try PostgresVisitStore.insert(claim.entries.compactMap { Visit.decode($0.value) }, on: connection)
        }
        #expect(added == 150)
        #expect(try server.psql("SELECT count(*) FROM video_visits") == "100", "the trim deleted 50 of the batch's visits already")

        let again = try visits.move(from: outbox, limit: 500)
        #expect(again == VisitOutbox.Moved(moved: 0, alreadyStored: 150, rejected: 0))
        #expect(try visits.count(of: "v") == 150)
        #expect(try outbox.figures().queued == 0)

        try outbox.append(Visit(videoId: "v", ip: "192.0.2.1", userAgent: "after", at: 5_000))
        #expect(try visits.move(from: outbox, limit: 500) == VisitOutbox.Moved(moved: 1, alreadyStored: 0, rejected: 0))
        #expect(try visits.count(of: "v") == 151)
        #expect(try visits.visits(of: "v", limit: 2).map(\.userAgent) == ["after", "twice/149"])
    }

    @Test("a store directory copied to a second host: each host's next batch is counted, under an id of its own")
    func copiedStoreDirectory() throws {
        let (server, client) = try ClusterCoordinationTests.database("visits-copied")
        defer { server.remove() }
        let first = TestPaths.temporaryDirectory("db-visits-host-a")
        let second = TestPaths.temporaryDirectory("db-visits-host-b")
        defer {
            try? FileManager.default.removeItem(at: first)
            try? FileManager.default.removeItem(at: second)
        }
        let visits = PostgresVisitStore(client: client)
        let storeA = try Store.open(StoreOptions(directory: first.path, maxBytes: 64 << 20))
        let hostA = VisitOutbox(store: storeA, host: "host-a")
        try hostA.append(Visit(videoId: "v", ip: "192.0.2.1", userAgent: "before the copy", at: 1_000))
        #expect(try visits.move(from: hostA, limit: 500).moved == 1)

        // The data file only: the lock file describes the readers of the original.
        try FileManager.default.createDirectory(at: second, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: first.appendingPathComponent("data.mdb"), to: second.appendingPathComponent("data.mdb"))
        let storeB = try Store.open(StoreOptions(directory: second.path, maxBytes: 64 << 20))
        let hostB = VisitOutbox(store: storeB, host: "host-b")

        // Both stores number their next batch 2.
        try hostA.append(Visit(videoId: "v", ip: "192.0.2.1", userAgent: "host a", at: 2_000))
        try hostB.append(Visit(videoId: "v", ip: "192.0.2.2", userAgent: "host b", at: 2_001))
        #expect(try visits.move(from: hostA, limit: 500) == VisitOutbox.Moved(moved: 1, alreadyStored: 0, rejected: 0))
        #expect(try visits.move(from: hostB, limit: 500) == VisitOutbox.Moved(moved: 1, alreadyStored: 0, rejected: 0))
        #expect(try visits.count(of: "v") == 3)
        #expect(try server.psql("SELECT string_agg(split_part(mover_id, '/', 1) || ':' || batch, ',' ORDER BY mover_id) FROM video_visit_movers")
                == "host-a:2,host-b:2")
    }
}
