import Foundation
import Testing

/// Accounts and streams through a real nginx and real workers.
@Suite("Users", .serialized)
struct UsersTests {
    @Test("the user flow on /api/v1/users: 201, 200 on a re-request in any case, 409 with the active list, 204, 404", arguments: StorageMode.allCases)
    func apiFlow(_ storage: StorageMode) async throws {
        let stack = try await Stack("users-api", workers: 2, storage: storage)
        defer { stack.stop() }

        let created = try await stack.createUser("010", name: "Test User", subscription: "basic plan")
        #expect(created.status == 201)
        #expect(created.header("Location") == "/api/v1/users/010")
        let user = try #require(created.json())
        #expect(user["id"] as? String == "010")
        #expect(user["name"] as? String == "Test User")
        #expect(user["subscription"] as? String == "basic plan")
        #expect(user["streamLimit"] as? Int == 3)
        #expect(user["streams"] as? [Any] != nil && (user["streams"] as? [Any])?.isEmpty == true)
        #expect(user.keys.contains("lastOnline") && user["lastOnline"] is NSNull)
        let createdAt = try #require(user["createdAt"] as? String)
        #expect(ISO8601DateFormatter.withMillis.date(from: createdAt) != nil)

        #expect(try await stack.createUser("010").status == 409)
        #expect(try await stack.admin("GET", "/api/v1/users/010").status == 200)

        for (index, stream) in ["stream_100", "Stream_11", "stream_12"].enumerated() {
            let granted = try await stack.grant("010", stream)
            #expect(granted.status == 201)
            #expect(granted.json()?["stream"] as? String == stream)
            #expect(granted.json()?["active"] as? Int == index + 1)
            #expect(granted.json()?["limit"] as? Int == 3)
            let started = ISO8601DateFormatter.withMillis.date(from: granted.json()?["startedAt"] as? String ?? "")
            let expires = ISO8601DateFormatter.withMillis.date(from: granted.json()?["expiresAt"] as? String ?? "")
            #expect(started != nil && expires != nil)
            if let started, let expires { #expect(abs(expires.timeIntervalSince(started) - 90) < 0.01) }
        }
        let refused = try await stack.grant("010", "stream_13")
        #expect(refused.status == 409)
        #expect(refused.errorCode == "stream_limit_reached")
        #expect(refused.errorField("limit") as? Int == 3)
        #expect(Set(refused.errorField("active") as? [String] ?? []) == ["stream_100", "Stream_11", "stream_12"])

        // Stream ids compare case-insensitively; the first spelling is kept.
        let again = try await stack.grant("010", "STREAM_11")
        #expect(again.status == 200)
        #expect(again.json()?["stream"] as? String == "Stream_11")
        #expect(again.json()?["active"] as? Int == 3)
        #expect(try await stack.activeStreams("010")?.sorted() == ["Stream_11", "stream_100", "stream_12"])

        let heartbeat = try await stack.admin("PUT", "/api/v1/users/010/streams/stream_11")
        #expect(heartbeat.status == 200)
        #expect(heartbeat.json()?["stream"] as? String == "Stream_11")
        #expect(try await stack.admin("PUT", "/api/v1/users/010/streams/stream_13").status == 404)

        #expect(try await stack.admin("DELETE", "/api/v1/users/010/streams/STREAM_100").status == 204)
        let released = try await stack.admin("DELETE", "/api/v1/users/010/streams/stream_100")
        #expect(released.status == 404)
        #expect(released.errorCode == "stream_not_active")
        #expect(try await stack.grant("010", "stream_13").status == 201)

        let fetched = try await stack.admin("GET", "/api/v1/users/010")
        #expect(fetched.json()?["lastOnline"] as? String != nil)

        #expect(try await stack.admin("DELETE", "/api/v1/users/010").status == 204)
        let gone = try await stack.admin("GET", "/api/v1/users/010")
        #expect(gone.status == 404)
        #expect(gone.errorCode == "user_not_found")
        #expect(try await stack.admin("DELETE", "/api/v1/users/010").status == 404)
        #expect(try await stack.grant("010", "stream_1").status == 404)
        #expect(try await stack.admin("PUT", "/api/v1/users/010/streams/stream_13").status == 404)

        // A user created again under the same id starts with no streams.
        #expect(try await stack.createUser("010").status == 201)
        #expect(try await stack.activeStreams("010") == [])
    }

    @Test("every /api/v1/users route answers 401 JSON without the token and 403 with a wrong one", arguments: StorageMode.allCases)
    func adminToken(_ storage: StorageMode) async throws {
        let stack = try await Stack("users-auth", workers: 2, storage: storage)
        defer { stack.stop() }
        let routes = [("POST", "/api/v1/users"), ("GET", "/api/v1/users"), ("GET", "/api/v1/users/010"), ("DELETE", "/api/v1/users/010"),
                      ("POST", "/api/v1/users/010/streams"), ("PUT", "/api/v1/users/010/streams/s"), ("DELETE", "/api/v1/users/010/streams/s")]
        let body = try JSONSerialization.data(withJSONObject: ["name": "x", "subscription": "y", "stream": "s"])
        for (method, path) in routes {
            let missing = try await stack.client.request(method, path, body: method == "POST" ? body : nil)
            #expect(missing.status == 401, "\(method) \(path)")
            #expect(missing.errorCode == "unauthorized")
            #expect(missing.header("Content-Type") == "application/json")
            let wrong = try await stack.client.request(method, path, headers: ["Authorization": "Bearer not-the-admin-token"],
                                                       body: method == "POST" ? body : nil)
            #expect(wrong.status == 403, "\(method) \(path)")
            #expect(wrong.errorCode == "forbidden")
        }
        #expect(try await stack.admin("GET", "/api/v1/users").status == 200)
    }

    @Test("creation: generated ids, unknown fields ignored, one 400 listing every field problem", arguments: StorageMode.allCases)
    func creationValidation(_ storage: StorageMode) async throws {
        let stack = try await Stack("users-validation", workers: 2, storage: storage)
        defer { stack.stop() }

        let generated = try await stack.admin("POST", "/api/v1/users", json: ["name": "Ann", "subscription": "premium", "favourite": [1, 2]])
        #expect(generated.status == 201)
        let id = try #require(generated.json()?["id"] as? String)
        #expect(UUID(uuidString: id) != nil)
        #expect(try await stack.admin("GET", "/api/v1/users/\(id)").json()?["name"] as? String == "Ann")

        let bad = try await stack.admin("POST", "/api/v1/users", json: ["name": "", "subscription": 7, "id": "../etc"])
        #expect(bad.status == 400)
        #expect(bad.errorCode == "invalid_body")
        let fields = (bad.errorField("fields") as? [[String: Any]] ?? []).compactMap { $0["field"] as? String }
        #expect(Set(fields) == ["name", "subscription", "id"])

        let long = try await stack.admin("POST", "/api/v1/users", json: ["name": String(repeating: "n", count: 201), "subscription": "basic"])
        #expect(long.status == 400)
        let longest = try await stack.admin("POST", "/api/v1/users", json: ["name": String(repeating: "n", count: 200), "subscription": "basic"])
        #expect(longest.status == 201)
        let blank = try await stack.admin("POST", "/api/v1/users", json: ["name": "   ", "subscription": "basic"])
        #expect(blank.status == 400)
        let missing = try await stack.admin("POST", "/api/v1/users", json: ["name": "Ann"])
        #expect(missing.status == 400)
        #expect((missing.errorField("fields") as? [[String: Any]])?.first?["problem"] as? String == "is required")
    }

    @Test("pages follow creation order and stay stable while users are added", arguments: StorageMode.allCases)
    func stablePagination(_ storage: StorageMode) async throws {
        let stack = try await Stack("users-pages", workers: 2, storage: storage)
        defer { stack.stop() }
        var expected: [String] = []
        for index in 0..<7 {
            let id = "z-\(index)"
            #expect(try await stack.createUser(id).status == 201)
            expected.append(id)
        }
        #expect(try await stack.admin("DELETE", "/api/v1/users/z-3").status == 204)
        expected.removeAll { $0 == "z-3" }

        var seen: [String] = []
        var cursor: String?
        var added = 0
        repeat {
            let answer = try await stack.admin("GET", "/api/v1/users?limit=2" + (cursor.map { "&cursor=\($0)" } ?? ""))
            #expect(answer.status == 200)
            let page = (answer.json()?["users"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
            #expect(page.count <= 2)
            seen += page
            cursor = answer.json()?["nextCursor"] as? String
            // Users added mid-walk, with ids that sort before every other, come at the end.
            if added < 3 {
                let id = "a-\(added)"
                #expect(try await stack.createUser(id).status == 201)
                expected.append(id)
                added += 1
            }
        } while cursor != nil && seen.count < 100
        #expect(seen == expected)

        #expect(try await stack.admin("GET", "/api/v1/users?limit=0").status == 400)
        #expect(try await stack.admin("GET", "/api/v1/users?limit=501").status == 400)
        #expect(try await stack.admin("GET", "/api/v1/users?cursor=abc").status == 400)
        #expect(try await stack.admin("GET", "/api/v1/users?cursor=-1").status == 400)
        let last = try await stack.admin("GET", "/api/v1/users?limit=500")
        #expect(last.json()?["nextCursor"] is NSNull)
        #expect((last.json()?["users"] as? [Any])?.count == expected.count)
    }

    @Test("a lease not renewed expires and frees its slot; a heartbeat keeps its own", arguments: StorageMode.allCases)
    func leaseExpiry(_ storage: StorageMode) async throws {
        let stack = try await Stack("users-lease", workers: 2, environment: ["MARQUEE_STREAM_LEASE_SECONDS": "1.5"], storage: storage)
        defer { stack.stop() }
        #expect(try await stack.createUser("lease").status == 201)
        for stream in ["kept", "dropped-1", "dropped-2"] {
            #expect(try await stack.grant("lease", stream).status == 201)
        }
        #expect(try await stack.grant("lease", "new-1").status == 409)

        // Renew "kept" every 0.4 s for 2.4 s: the other two pass their 1.5 s.
        let start = ContinuousClock.now
        while ContinuousClock.now - start < .milliseconds(2400) {
            try await Task.sleep(for: .milliseconds(400))
            let heartbeat = try await stack.admin("PUT", "/api/v1/users/lease/streams/kept")
            #expect(heartbeat.status == 200)
        }
        #expect(try await stack.activeStreams("lease") == ["kept"])
        let expired = try await stack.admin("PUT", "/api/v1/users/lease/streams/dropped-1")
        #expect(expired.status == 404)
        #expect(expired.errorCode == "stream_not_active")

        let first = try await stack.grant("lease", "new-1")
        #expect(first.status == 201)
        #expect(first.json()?["active"] as? Int == 2)
        #expect(try await stack.grant("lease", "new-2").status == 201)
        let full = try await stack.grant("lease", "new-3")
        #expect(full.status == 409)
        #expect(Set(full.errorField("active") as? [String] ?? []) == ["kept", "new-1", "new-2"])
    }

    @Test("per-plan limits from MARQUEE_STREAM_LIMITS, changed by a reload", arguments: StorageMode.allCases)
    func planLimits(_ storage: StorageMode) async throws {
        let directory = TestPaths.temporaryDirectory("users-plans-env")
        defer { try? FileManager.default.removeItem(at: directory) }
        let envFile = directory.appendingPathComponent("marquee.env")
        try "MARQUEE_STREAM_LIMITS=basic plan=1, Premium = 4\n".write(to: envFile, atomically: true, encoding: .utf8)
        let stack = try await Stack("users-plans", workers: 2, environment: ["MARQUEE_ENV_FILE": envFile.path], storage: storage)
        defer { stack.stop() }

        let basic = try await stack.createUser("basic", subscription: "Basic Plan")
        #expect(basic.json()?["streamLimit"] as? Int == 1)
        #expect(try await stack.createUser("premium", subscription: "premium").json()?["streamLimit"] as? Int == 4)
        #expect(try await stack.createUser("other", subscription: "Medium Plan").json()?["streamLimit"] as? Int == 3)
        #expect(try await stack.grant("basic", "a").status == 201)
        let refused = try await stack.grant("basic", "b")
        #expect(refused.status == 409)
        #expect(refused.errorField("limit") as? Int == 1)
        for stream in ["a", "b", "c", "d"] { #expect(try await stack.grant("premium", stream).status == 201) }
        #expect(try await stack.grant("premium", "e").status == 409)

        try "MARQUEE_STREAM_LIMIT=2\nMARQUEE_STREAM_LIMITS=basic plan=2\n".write(to: envFile, atomically: true, encoding: .utf8)
        for worker in stack.workers { worker.signal(SIGHUP) }
        try await Self.waitForLog("configuration reloaded", in: stack)
        for _ in 0..<4 {
            #expect(try await stack.admin("GET", "/api/v1/users/other").json()?["streamLimit"] as? Int == 2)
        }
        #expect(try await stack.grant("basic", "b").status == 201)
        // A lowered limit refuses new streams, and keeps the ones that run.
        #expect(try await stack.grant("premium", "e").status == 409)
        #expect(try await stack.grant("premium", "a").status == 200)

        // A bad value is refused and the running limits stay.
        try "MARQUEE_STREAM_LIMITS=basic plan\n".write(to: envFile, atomically: true, encoding: .utf8)
        for worker in stack.workers { worker.signal(SIGHUP) }
        try await Self.waitForLog("reload refused", in: stack)
        #expect(try await stack.admin("GET", "/api/v1/users/basic").json()?["streamLimit"] as? Int == 2)
        #expect(stack.workers.allSatisfy { $0.isRunning })
    }

    @Test("the status page shows the users section: users, grants, refusals", arguments: StorageMode.allCases)
    func statusCounters(_ storage: StorageMode) async throws {
        let stack = try await Stack("users-status", workers: 1, storage: storage)
        defer { stack.stop() }
        #expect(try await stack.createUser("s1").status == 201)
        #expect(try await stack.createUser("s2").status == 201)
        for stream in ["a", "b", "c", "d"] { _ = try await stack.grant("s1", stream) }
        let section = try #require(try await stack.usersStatus())
        #expect(section["users"] as? Int == 2)
        #expect(section["grants"] as? Int == 3)
        #expect(section["refusals"] as? Int == 1)
        #expect(section["streamLimit"] as? Int == 3)
        #expect(section["leaseSeconds"] as? Double == 90)
    }

    @Test("marquee config check refuses a bad MARQUEE_STREAM_LIMITS, naming it")
    func configCheck() throws {
        let directory = TestPaths.temporaryDirectory("users-config")
        defer { try? FileManager.default.removeItem(at: directory) }
        let check = try ChildProcess("check", executable: TestPaths.marquee, arguments: ["config", "check"],
                                     environment: ["MARQUEE_STREAM_LIMITS": "basic=1,basic=2"], logDirectory: directory)
        #expect(check.waitForExit(timeout: .seconds(10)) == 78)
        #expect(check.log.contains("invalid MARQUEE_STREAM_LIMITS: entry 'basic=2' names a plan a second time"))
    }

    /// Waits until every worker has logged a message starting with `message`.
    static func waitForLog(_ message: String, in stack: Stack, timeout: Duration = .seconds(10)) async throws {
        let deadline = ContinuousClock.now + timeout
        while !stack.workers.allSatisfy({ $0.log.contains(#""msg":"\#(message)"#) }) {
            guard ContinuousClock.now < deadline else { throw StackError("not every worker logged '\(message)'") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// The `watching` list of a drop-in route's user.
    static func watching(_ answer: HTTPAnswer) -> [String]? {
        let status = answer.json()?["Status"] as? [String: Any]
        let streams = (status?["Online"] as? [String: Any])?["Streams"] as? [String: Any]
        return streams?["watching"] as? [String]
    }
}

extension ISO8601DateFormatter {
    static var withMillis: ISO8601DateFormatter {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }
}
