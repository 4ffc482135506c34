import Foundation
import Testing

/// `marquee users import FILE`, run as the built binary against a store directory.
@Suite("UsersImport", .serialized)
struct UsersImportTests {
    static var fixture: URL {
        TestPaths.repository.appendingPathComponent("Tests/MarqueeTests/Fixtures/users/legacy-database.json")
    }

    func runImport(_ file: String, store: URL, in directory: URL, label: String,
                   environment: [String: String] = [:]) throws -> (status: Int32?, output: String) {
        let process = try ChildProcess(label, executable: TestPaths.marquee, arguments: ["users", "import", file],
                                       environment: ["MARQUEE_STORE_DIR": store.path, "MARQUEE_STORE_MAX_MB": "64"].merging(environment) { _, new in new },
                                       logDirectory: directory)
        let status = process.waitForExit(timeout: .seconds(20))
        return (status, process.log)
    }

    @Test("importing the earlier service's database twice gives the same store, with its active streams granted")
    func idempotentImport() async throws {
        let directory = TestPaths.temporaryDirectory("users-import")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = directory.appendingPathComponent("store")

        let first = try runImport(Self.fixture.path, store: store, in: directory, label: "first")
        #expect(first.status == 0, "\(first.output)")
        let firstLines = first.output.split(separator: "\n").map(String.init)
        #expect(firstLines.contains("imported 001 (3 active streams granted with a lease of 90 s)"))
        #expect(firstLines.contains("imported 002 (2 active streams granted with a lease of 90 s)"))
        #expect(firstLines.contains("imported 192688f0-60be-11ea-a428-b7b3360c9a09"))
        #expect(firstLines.last == "3 imported, 0 skipped")

        let second = try runImport(Self.fixture.path, store: store, in: directory, label: "second")
        #expect(second.status == 0, "\(second.output)")
        let secondLines = second.output.split(separator: "\n").map(String.init)
        #expect(secondLines.contains("skipped 001: already present"))
        #expect(secondLines.contains("skipped 192688f0-60be-11ea-a428-b7b3360c9a09: already present"))
        #expect(secondLines.last == "0 imported, 3 skipped")

        // The workers see exactly the three users, with the earlier service's fields and streams.
        let stack = try await Stack("users-import-serve", workers: 2, environment: ["MARQUEE_STORE_DIR": store.path])
        defer { stack.stop() }
        let listing = try await stack.admin("GET", "/api/v1/users")
        let users = listing.json()?["users"] as? [[String: Any]] ?? []
        #expect(users.compactMap { $0["id"] as? String } == ["001", "002", "192688f0-60be-11ea-a428-b7b3360c9a09"])
        #expect(users.first?["name"] as? String == "Mohamed Sheikh")
        #expect(users.first?["subscription"] as? String == "Basic Plan")
        #expect(try await stack.activeStreams("001")?.sorted() == ["stream_2", "stream_3", "stream_9"])
        let legacy = try await stack.legacy("GET", "/getuser?id=002")
        #expect(legacy.json()?["Name"] as? String == "David Beckham")
        #expect(UsersTests.watching(legacy)?.sorted() == ["stream_2", "stream_4"])
        #expect(try await stack.usersStatus()?["users"] as? Int == 3)
        // 001 is at its limit of 3 the moment after the migration, not free to open 3 more.
        #expect(try await stack.grant("001", "stream_5").status == 409)
        #expect(try await stack.grant("001", "stream_2").status == 200, "a stream it was watching is renewed")
    }

    @Test("an imported stream keeps its slot while its player renews it, and frees it within the lease once the player is gone")
    func importedLeases() async throws {
        // A short lease keeps the test short; the margins leave room for a loaded machine.
        let lease = ["MARQUEE_STREAM_LEASE_SECONDS": "6", "MARQUEE_STREAM_LIMIT": "3"]
        let stack = try await Stack("users-import-leases", workers: 2, environment: lease)
        defer { stack.stop() }
        // Imported into the store the workers are serving, as an operator would migrate.
        let imported = try runImport(Self.fixture.path, store: stack.directory.appendingPathComponent("store"), in: stack.directory,
                                     label: "leases", environment: lease.merging(["MARQUEE_STORE_MAX_MB": "256"]) { _, new in new })
        #expect(imported.output.contains("imported 001 (3 active streams granted with a lease of 6 s)"), "\(imported.output)")
        #expect(try await stack.grant("001", "stream_5").status == 409)

        // The player of stream_2 keeps heartbeating; those of stream_3 and stream_9 are gone.
        let deadline = ContinuousClock.now + .seconds(8)
        while ContinuousClock.now < deadline {
            #expect(try await stack.admin("PUT", "/api/v1/users/001/streams/stream_2").status == 200)
            try await Task.sleep(for: .milliseconds(500))
        }
        #expect(try await stack.activeStreams("001") == ["stream_2"])
        #expect(try await stack.grant("001", "stream_5").status == 201)
        #expect(try await stack.grant("001", "stream_6").status == 201)
        #expect(try await stack.grant("001", "stream_7").status == 409)
    }

    @Test("streams over the plan's limit, repeated or with an invalid id are not granted, and the line says which")
    func streamsPastTheLimit() throws {
        let directory = TestPaths.temporaryDirectory("users-import-limit")
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("database.json")
        let streams: [Any] = ["stream_1", "STREAM_1", "stream_2", "../x", 7, "stream_3"]
        try JSONSerialization.data(withJSONObject: ["Users": [
            "u1": ["Name": "One", "Subscription": "Basic Plan", "Status": ["Online": ["Streams": ["activeStreams": 4, "watching": streams]]]],
        ]]).write(to: file)
        let result = try runImport(file.path, store: directory.appendingPathComponent("store"), in: directory, label: "limit",
                                   environment: ["MARQUEE_STREAM_LIMITS": "basic plan=2"])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.split(separator: "\n").map(String.init).contains(
            "imported u1 (2 active streams granted with a lease of 90 s; over the plan's limit, not granted: stream_3; 2 streams with an invalid id left out)"),
            "\(result.output)")
    }

    @Test("entries it cannot take are skipped with the reason; the rest are imported")
    func skipsWithReasons() throws {
        let directory = TestPaths.temporaryDirectory("users-import-bad")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = directory.appendingPathComponent("store")
        let file = directory.appendingPathComponent("database.json")
        let database: [String: Any] = ["Users": [
            "good": ["Name": "Good", "Subscription": "basic plan"],
            "../escape": ["Name": "Bad id", "Subscription": "basic plan"],
            "no-name": ["Subscription": "basic plan"],
            "blank": ["Name": "  ", "Subscription": "basic plan"],
            "typed": ["Name": 7, "Subscription": ["basic"]],
            "scalar": "not a user",
            String(repeating: "x", count: 65): ["Name": "Long id", "Subscription": "basic plan"],
        ]]
        try JSONSerialization.data(withJSONObject: database).write(to: file)

        let result = try runImport(file.path, store: store, in: directory, label: "bad")
        #expect(result.status == 0, "\(result.output)")
        let lines = result.output.split(separator: "\n").map(String.init)
        #expect(lines.contains("imported good"))
        #expect(lines.contains("skipped ../escape: the id may contain only letters A-Z a-z, digits, '.', '_' and '-'"))
        #expect(lines.contains("skipped no-name: Name is required"))
        #expect(lines.contains("skipped blank: Name must not be blank"))
        #expect(lines.contains("skipped typed: Name must be a string; Subscription must be a string"))
        #expect(lines.contains("skipped scalar: the entry is not an object"))
        #expect(lines.contains("skipped \(String(repeating: "x", count: 65)): the id must be at most 64 characters"))
        #expect(lines.last == "1 imported, 6 skipped")

        try JSONSerialization.data(withJSONObject: ["Users": ["good": ["Name": "Renamed", "Subscription": "basic plan"]]]).write(to: file)
        let changed = try runImport(file.path, store: store, in: directory, label: "changed")
        #expect(changed.output.contains("skipped good: already present with another Name or Subscription; the stored user is kept"))

        let missing = try runImport(directory.appendingPathComponent("absent.json").path, store: store, in: directory, label: "absent")
        #expect(missing.status == 1)
        #expect(missing.output.contains("cannot read"))
        try Data("[1, 2]".utf8).write(to: file)
        let wrongShape = try runImport(file.path, store: store, in: directory, label: "shape")
        #expect(wrongShape.status == 1)
        #expect(wrongShape.output.contains("no \"Users\" object"))
    }
}
