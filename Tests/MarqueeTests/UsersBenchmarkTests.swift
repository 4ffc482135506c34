import Foundation
import Testing

extension Benchmarks {
    /// Reading a user and the grant+release cycle through nginx (opt-in: see `BenchRun`), on a
    /// store prepared by `marquee users import`, at the default sync setting.
    @Suite("Users benchmark")
    struct UsersBenchmarkTests {
        static let environment = ["MARQUEE_ADMIN_TOKEN": Stack.adminToken]
        static let authorization = "Authorization: Bearer \(Stack.adminToken)"
        /// Users per wrk thread, and how many cycles a release trails its grant: far more than the
        /// connections one wrk thread holds, so a release never overtakes its grant.
        static let usersPerThread = 8192
        static let lag = 4096

        @Test("reading a user against the C ceiling")
        func readUser() throws {
            let store = try Self.importedStore(label: "users-read")
            defer { try? FileManager.default.removeItem(at: store.deletingLastPathComponent()) }
            let run = try BenchRun("/api/v1/users/bench-1-1", ["--store", store.path, "--header", Self.authorization],
                                   environment: Self.environment, label: "users-read")
            #expect(try run.ratio(connections: 64) >= 0.8)
            run.expectMarqueeClean()
        }

        @Test("grant+release cycles per second")
        func grantRelease() throws {
            let store = try Self.importedStore(label: "users-cycle")
            defer { try? FileManager.default.removeItem(at: store.deletingLastPathComponent()) }
            let script = store.deletingLastPathComponent().appendingPathComponent("cycle.lua")
            try Self.cycleScript.write(to: script, atomically: true, encoding: .utf8)
            let run = try BenchRun("/api/v1/users/bench-1-1", ["--store", store.path, "--header", Self.authorization,
                                                                "--script", script.path],
                                   environment: Self.environment, label: "users-cycle")
            let cycles = try run.row("marquee", connections: 64).requestsPerSecond / 2
            print("users bench: grant+release \(Int(cycles)) cycles/s at 64 connections")
            #expect(cycles >= 3000)
            run.expectMarqueeClean()
        }

        /// A wrk script of grant+release cycles over bench-<thread>-<n>.
        static let cycleScript = """
                -- Grants stream "s" to bench-<thread>-<n> for n = 1, 2, ..., and releases each one
                -- \(Self.lag) cycles later, alternating once the first \(Self.lag) grants are out.
                local users, lag = \(Self.usersPerThread), \(Self.lag)
                local granted, released = 0, 0
                local headers = { ["Authorization"] = "Bearer \(Stack.adminToken)", ["Content-Type"] = "application/json" }
                local body = '{"stream": "s"}'
                -- wrk calls request() once on the first thread to check it, without sending it:
                -- that first call reads a user, so that no grant goes unsent while its release follows.
                local checked = false
                function request()
                  if not checked then
                    checked = true
                    return wrk.format("GET", "/api/v1/users/bench-" .. thread_id .. "-1", headers)
                  end
                  if granted - released < lag then
                    granted = granted + 1
                    local user = "bench-" .. thread_id .. "-" .. ((granted - 1) % users + 1)
                    return wrk.format("POST", "/api/v1/users/" .. user .. "/streams", headers, body)
                  end
                  released = released + 1
                  local user = "bench-" .. thread_id .. "-" .. ((released - 1) % users + 1)
                  return wrk.format("DELETE", "/api/v1/users/" .. user .. "/streams/s", headers)
                end
                """

        /// A store directory holding bench-<thread>-<n> for two wrk threads, imported the way an
        /// operator would.
        static func importedStore(label: String, environment: [String: String] = [:]) throws -> URL {
            let directory = TestPaths.temporaryDirectory(label)
            let store = directory.appendingPathComponent("store")
            try FileManager.default.createDirectory(at: store, withIntermediateDirectories: true)
            var users: [String: Any] = [:]
            for thread in 1...2 {
                for n in 1...usersPerThread {
                    users["bench-\(thread)-\(n)"] = ["Name": "Bench \(thread) \(n)", "Subscription": "Basic Plan"]
                }
            }
            let file = directory.appendingPathComponent("users.json")
            try JSONSerialization.data(withJSONObject: ["Users": users]).write(to: file)
            let importer = try ChildProcess("users-import", executable: TestPaths.marquee, arguments: ["users", "import", file.path],
                                            environment: ["MARQUEE_STORE_DIR": store.path].merging(environment) { _, new in new }, logDirectory: directory)
            try #require(importer.waitForExit(timeout: .seconds(120)) == 0, "import failed: \(importer.log)")
            return store
        }
    }
}
