import Foundation
import LMDBStore
import Marquee
import Testing

/// Visits under load through a real nginx, with the consumer's worker killed outright.
@Suite("Video visits under load", .serialized)
struct VideoVisitsLoadTests {
    static let reads = 10_000
    static let concurrency = 32

    @Test("10,000 reads with the consumer's worker killed -9 midway: every 2xx read is one stored visit, none lost or doubled")
    func visitsSurviveKill() async throws {
        let stack = try await Stack("video-visits-load", workers: 2)
        defer { stack.stop() }
        let put = try await stack.client.request("PUT", "/api/v1/videos/12345", headers: ["Authorization": "Bearer \(Stack.adminToken)"],
                                                 body: try VideoFixtures.data("video-12345.json"))
        #expect(put.status == 201)

        let ledger = ReadLedger()
        let load = Task {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<Self.concurrency {
                    group.addTask { await Self.readUntilDone(stack.client, ledger) }
                }
            }
        }
        while ledger.succeeded < Self.reads * 3 / 10 { try await Task.sleep(for: .milliseconds(10)) }
        let holder = try await Self.consumerPid(stack)
        let victim = try #require(stack.workers.first { $0.pid == holder } ?? stack.workers.first)
        victim.signal(SIGKILL)
        #expect(victim.waitForExit(timeout: .seconds(5)) != nil)
        let killedAt = ledger.succeeded
        try stack.startWorker()
        await load.value

        try await VideoCatalogueTests.waitUntilDrained(stack, timeout: .seconds(60))
        let successes = ledger.successes
        let failures = ledger.failures
        #expect(successes.count == Self.reads)
        #expect(killedAt < Self.reads, "the kill happened while reads were still going on")
        #expect(try await Self.consumerPid(stack) != victim.pid, "another worker took the consumer over")

        let store = try Store.open(StoreOptions(directory: stack.directory.appendingPathComponent("store").path, maxBytes: 256 << 20))
        let stored = try VisitTable(store: store).visits(of: "12345", limit: .max).map(\.userAgent)
        let storedSet = Set(stored)
        #expect(stored.count == storedSet.count, "no visit is stored twice")
        #expect(successes.isSubset(of: storedSet), "no 2xx read is lost: \(successes.subtracting(storedSet).count) missing")
        #expect(storedSet.intersection(successes).count == Self.reads)
        // A read the dying worker had recorded but not answered is a visit its client never saw.
        #expect(storedSet.subtracting(successes).isSubset(of: failures), "every other visit is a read that failed at the kill")
        #expect(try VisitTable(store: store).count(of: "12345") == stored.count)
        let figures = try VisitOutbox(store: store).figures()
        #expect(figures.queued == 0)
        #expect(figures.rejected == 0)
        #expect(figures.moved == stored.count)
    }

    /// Reads until the ledger has its 10,000 successes. A failed read is retried as a new read
    /// with its own user agent, so that each stored visit names the one attempt it came from.
    static func readUntilDone(_ client: HTTPClient, _ ledger: ReadLedger) async {
        while let index = ledger.next() {
            var attempt = 0
            while true {
                let agent = "load/\(index)/\(attempt)"
                let status = (try? await client.get("/video/12345", headers: ["User-Agent": agent]).status) ?? 0
                if (200..<300).contains(status) {
                    ledger.succeed(agent)
                    break
                }
                ledger.fail(agent)
                attempt += 1
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
    }

    static func consumerPid(_ stack: Stack) async throws -> Int32? {
        let status = try await stack.client.get("/api/v1/status")
        let visits = ((status.json()?["features"] as? [String: Any])?["videos"] as? [String: Any])?["visits"] as? [String: Any]
        return (visits?["consumer"] as? String)?.split(separator: "@").first.flatMap { Int32($0) }
    }
}

/// Which reads are handed out, and which attempts got a 2xx or not.
final class ReadLedger: @unchecked Sendable {
    private let lock = NSLock()
    private var handedOut = 0
    private var succeededAgents: Set<String> = []
    private var failedAgents: Set<String> = []

    func next() -> Int? {
        lock.withLock {
            guard handedOut < VideoVisitsLoadTests.reads else { return nil }
            handedOut += 1
            return handedOut - 1
        }
    }

    func succeed(_ agent: String) { lock.withLock { _ = succeededAgents.insert(agent) } }
    func fail(_ agent: String) { lock.withLock { _ = failedAgents.insert(agent) } }
    var succeeded: Int { lock.withLock { succeededAgents.count } }
    var successes: Set<String> { lock.withLock { succeededAgents } }
    var failures: Set<String> { lock.withLock { failedAgents } }
}
