import Foundation
import Testing

extension Benchmarks {
    /// Database mode (MARQUEE_DATABASE_URL) against a PostgreSQL on the same machine, fsync and
    /// synchronous_commit on (opt-in: see `BenchRun`).
    @Suite("Database benchmark")
    struct DatabaseBenchmarkTests {
        @Test("grant+release cycles per second with the users in PostgreSQL")
        func grantRelease() throws {
            let postgres = try PostgresServer("bench")
            defer { postgres.remove() }
            let database = ["MARQUEE_DATABASE_URL": postgres.url]
            try migrate(database)
            let store = try UsersBenchmarkTests.importedStore(label: "db-cycle", environment: database)
            defer { try? FileManager.default.removeItem(at: store.deletingLastPathComponent()) }
            #expect(try postgres.psql("SELECT count(*) FROM users") == String(2 * UsersBenchmarkTests.usersPerThread))
            let script = store.deletingLastPathComponent().appendingPathComponent("cycle.lua")
            try UsersBenchmarkTests.cycleScript.write(to: script, atomically: true, encoding: .utf8)
            let run = try BenchRun("/api/v1/users/bench-1-1", ["--store", store.path, "--header", UsersBenchmarkTests.authorization,
                                                                "--script", script.path],
                                   environment: UsersBenchmarkTests.environment.merging(database) { _, new in new }, label: "db-cycle")
            let cycles = try run.row("marquee", connections: 64).requestsPerSecond / 2
            print("database bench: grant+release \(Int(cycles)) cycles/s at 64 connections (synchronous_commit \(try postgres.psql("SHOW synchronous_commit")))")
            #expect(cycles >= 3000)
            run.expectMarqueeClean()
        }

        @Test("health and a cached trailer hit in database mode against embedded mode, back to back in one run, in both orders")
        func cachedReads() throws {
            let postgres = try PostgresServer("bench-reads")
            defer { postgres.remove() }
            let database = ["MARQUEE_DATABASE_URL": postgres.url]
            try migrate(database)
            let fake = try FakeUpstream()
            defer { fake.stop() }
            let trailer = TrailersFixtures.path(TrailersFixtures.arrival)
            for (route, environment) in [("/api/v1/health", [String: String]()), (trailer, TrailersFixtures.environment(fake))] {
                // Each mode measured right after the other, on the same nginx and a copy of the same
                // store (deploy/bench's variant); separate runs minutes apart differed by more than
                // the 5% in question. The second of a pair runs on a warmer machine, so both orders
                // are measured and the ratio is their geometric mean.
                let databaseSecond = try BenchRun(route, ["--connections", "64", "--variant", "MARQUEE_DATABASE_URL=\(postgres.url)"],
                                                  environment: environment, label: "reads-database-second")
                let databaseFirst = try BenchRun(route, ["--connections", "64", "--variant", "MARQUEE_DATABASE_URL="],
                                                 environment: environment.merging(database) { _, new in new }, label: "reads-database-first")
                let second = try databaseSecond.row("variant", connections: 64).requestsPerSecond
                    / databaseSecond.row("marquee", connections: 64).requestsPerSecond
                let first = try databaseFirst.row("marquee", connections: 64).requestsPerSecond
                    / databaseFirst.row("variant", connections: 64).requestsPerSecond
                let ratio = (first * second).squareRoot()
                print("database bench: \(route) at 64 connections, database over embedded \(String(format: "%.3f", ratio)) "
                      + "(database second \(String(format: "%.3f", second)), database first \(String(format: "%.3f", first)))")
                #expect(ratio >= 0.95, "\(route)")
                for run in [databaseSecond, databaseFirst] {
                    run.expectMarqueeClean()
                    #expect(try run.row("variant", connections: 64).non2xx == 0)
                }
            }
        }

        private func migrate(_ environment: [String: String]) throws {
            let directory = TestPaths.temporaryDirectory("db-bench-migrate")
            defer { try? FileManager.default.removeItem(at: directory) }
            let migrate = try ChildProcess("migrate", executable: TestPaths.marquee, arguments: ["db", "migrate"],
                                           environment: environment, logDirectory: directory)
            try #require(migrate.waitForExit(timeout: .seconds(60)) == 0, "\(migrate.log)")
        }
    }
}
