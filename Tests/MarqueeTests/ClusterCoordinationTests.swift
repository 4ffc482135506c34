import Foundation
@testable import Marquee
import PostgresClient
import Synchronization
import Testing

/// The database side of several hosts, against a real PostgreSQL: lease rows and the
/// cluster-wide single flight of upstream answers, with threads standing in for hosts.
@Suite("Cluster coordination", .serialized, .timeLimit(.minutes(2)))
struct ClusterCoordinationTests {
    static func database(_ label: String) throws -> (PostgresServer, PostgresClient) {
        let server = try PostgresServer(label)
        let client = PostgresClient(configuration: PostgresConfiguration(url: server.url))
        let migrator = PostgresMigrator(client: client, migrations: Database.migrations, lockKey: Database.migrationLockKey)
        try migrator.migrate()
        return (server, client)
    }

    @Test("a lease row has one holder; it renews; another owner takes it only once it expired or was released")
    func leaseRows() throws {
        let (server, client) = try Self.database("lease")
        defer { server.remove() }
        let first = ClusterLease("role", database: client, ttl: .milliseconds(600), owner: "host-1")
        let second = ClusterLease("role", database: client, ttl: .milliseconds(600), owner: "host-2")
        #expect(try first.claim())
        #expect(try !second.claim())
        #expect(try first.claim(), "the holder renews")
        #expect(try second.holder() == "host-1")
        Thread.sleep(forTimeInterval: 0.8)
        #expect(try second.claim(), "an expired row passes to the next claimer")
        #expect(try !first.claim())
        second.release()
        #expect(try first.holder() == nil)
        #expect(try first.claim())
    }

    @Test("eight threads asking the cluster for one missing answer at once: one fetch, eight identical answers")
    func singleFlight() throws {
        let (server, client) = try Self.database("flight")
        defer { server.remove() }
        let flight = ClusterFlight(database: client)
        let fetches = Atomic<Int>(0)
        let answers = Mutex<[[UInt8]]>([])
        let threads = (0..<8).map { index in
            Thread {
                do {
                    let answer = try flight.answer("tmdb/find/tt1", wait: .seconds(10)) {
                        fetches.add(1, ordering: .relaxed)
                        Thread.sleep(forTimeInterval: 0.3)
                        return (Array("answer".utf8), .seconds(30))
                    }
                    answers.withLock { $0.append(answer.value) }
                } catch {
                    Issue.record("thread \(index): \(error)")
                }
            }
        }
        threads.forEach { $0.start() }
        let deadline = Date().addingTimeInterval(20)
        while answers.withLock({ $0.count }) < 8 && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        #expect(fetches.load(ordering: .relaxed) == 1)
        #expect(answers.withLock { $0 } == Array(repeating: Array("answer".utf8), count: 8))
        let stored = try #require(try flight.fresh("tmdb/find/tt1"))
        #expect(stored.remaining > .seconds(25) && stored.remaining <= .seconds(30))
    }

    @Test("an expired answer is fetched again; a failed fetch leaves the next caller free to fetch")
    func expiryAndFailure() throws {
        let (server, client) = try Self.database("expiry")
        defer { server.remove() }
        let flight = ClusterFlight(database: client)
        struct Refused: Error {}
        #expect(throws: Refused.self) {
            try flight.answer("k", wait: .seconds(2)) { throw Refused() }
        }
        let first = try flight.answer("k", wait: .seconds(2)) { (Array("one".utf8), .milliseconds(300)) }
        #expect(first.value == Array("one".utf8))
        let cached = try flight.answer("k", wait: .seconds(2)) { (Array("not asked".utf8), .seconds(1)) }
        #expect(cached.value == Array("one".utf8))
        Thread.sleep(forTimeInterval: 0.5)
        let again = try flight.answer("k", wait: .seconds(2)) { (Array("two".utf8), .seconds(1)) }
        #expect(again.value == Array("two".utf8))
    }
}
