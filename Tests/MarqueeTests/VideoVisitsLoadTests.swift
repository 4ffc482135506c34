import Foundation
import LMDBStore
@testable import Marquee
import FastCGI
import Testing

/// Visits under load through a real nginx, with the consumer's worker killed outright.
@Suite("Video visits under load", .serialized)
struct VideoVisitsLoadTests {
    static let reads = 10_000
    static let concurrency = 32

    @Test("10,000 reads with the consumer's worker killed -9 midway: every 2xx read is counted once, the newest 100 are kept",
          arguments: StorageMode.allCases)
    func visitsSurviveKill(_ storage: StorageMode) async throws {
        let stack = try await Stack("video-visits-load", workers: 2, storage: storage)
        defer { stack.stop() }
        #expect(try await Self.catalogueVideo12345(stack) == 201)

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
        let count: Int
        let stored: [String]
        if let postgres = stack.postgres {
            let answer = try await stack.client.get("/api/v1/videos/12345/visits?limit=100", headers: ["Authorization": "Bearer \(Stack.adminToken)"])
            count = try #require(answer.json()?["count"] as? Int, "\(answer.text)")
            let recent = try #require(answer.json()?["recent"] as? [[String: Any]])
            #expect(recent.count == Visit.recentKept)
            #expect(try postgres.psql("SELECT count FROM video_visit_counts WHERE video_id = '12345'") == String(count))
            stored = try postgres.psql("SELECT user_agent FROM video_visits WHERE video_id = '12345'").split(separator: "\n").map(String.init)
            #expect(try LMDBVisitStore(store: store).count(of: "12345") == 0, "with a database, no visit lands in the embedded table")
        } else {
            count = try LMDBVisitStore(store: store).count(of: "12345")
            stored = try LMDBVisitStore(store: store).visits(of: "12345", limit: .max).map(\.userAgent)
        }
        #expect(count >= Self.reads, "no 2xx read is lost")
        #expect(count - Self.reads <= failures.count, "beyond the 2xx reads, only reads that failed at the kill are counted")
        #expect(stored.count == Visit.recentKept, "the newest visits are kept, no more")
        #expect(stored.count == Set(stored).count, "no visit is stored twice")
        #expect(Set(stored).isSubset(of: successes.union(failures)))
        let figures = try VisitOutbox(store: store).figures()
        #expect(figures.queued == 0)
        #expect(figures.rejected == 0)
        #expect(figures.moved == count)
    }

    @Test("a worker killed after recording a read, before answering it: nginx's retry on the other worker gets 200, and the read counts once")
    func retriedReadCountsOnce() async throws {
        let stack = try await Stack("video-visits-retry", workers: 1)
        defer { stack.stop() }
        #expect(try await Self.catalogueVideo12345(stack) == 201)
        var agents: [String] = []
        var killedAtTheAnswer: String?
        // The first attempt nearly always kills at the answer. It misses only when the visit's
        // own commit flushes adjoining pages with one writev; the victim then dies before the
        // commit, nginx's retry records the visit, and the next attempt tries again.
        for attempt in 1...3 where killedAtTheAnswer == nil {
            let victim = stack.workers[stack.workers.count - 1]
            // nginx keeps the connection the victim answered on, and sends the read over it.
            #expect(try await stack.client.get("/api/v1/health").status == 200)
            try stack.startWorker()
            try await Task.sleep(for: .milliseconds(300))
            let threads = try Self.requestThreads(of: victim.pid)
            try #require(!threads.isEmpty, "the victim's request threads are named \(FastCGIServer.requestThreadName)")
            // SIGKILL at a request thread's first writev: the answer, after the visit's commit,
            // before nginx has a byte of it.
            let trace = stack.directory.appendingPathComponent("kill-\(attempt).trace")
            let strace = try ChildProcess("strace-kill-\(attempt)", executable: "/usr/bin/strace",
                                          arguments: ["-qq", "-e", "trace=writev", "-e", "inject=writev:signal=SIGKILL", "-o", trace.path]
                                              + threads.flatMap { ["-p", String($0)] },
                                          logDirectory: stack.directory)
            defer { strace.stop() }
            try await Task.sleep(for: .seconds(1))
            let agent = "retried/\(attempt)"
            agents.append(agent)
            let read = try await stack.client.get("/video/12345", headers: ["User-Agent": agent])
            #expect(read.status == 200, "nginx retried on the other worker: \(read.status) \(read.text)")
            #expect(victim.waitForExit(timeout: .seconds(10)) != nil, "the victim died")
            _ = strace.waitForExit(timeout: .seconds(10))
            if ((try? String(contentsOf: trace, encoding: .utf8)) ?? "").contains("Status: 200") { killedAtTheAnswer = agent }
        }
        try #require(killedAtTheAnswer != nil, "in three attempts, no worker was killed at its answer")

        try await VideoCatalogueTests.waitUntilDrained(stack, timeout: .seconds(60))
        let store = try Store.open(StoreOptions(directory: stack.directory.appendingPathComponent("store").path, maxBytes: 256 << 20))
        let stored = try LMDBVisitStore(store: store).visits(of: "12345", limit: .max).map(\.userAgent)
        #expect(stored.sorted() == agents.sorted(), "each read once, \(killedAtTheAnswer ?? "") included")
        #expect(try LMDBVisitStore(store: store).count(of: "12345") == agents.count)
    }

    /// The threads of `pid` that serve requests, by the name the FastCGI layer gives them.
    static func requestThreads(of pid: Int32) throws -> [Int32] {
        try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task").compactMap { task in
            let name = try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/comm", encoding: .utf8)
            return name?.trimmingCharacters(in: .whitespacesAndNewlines) == FastCGIServer.requestThreadName ? Int32(task) : nil
        }
    }

    @Test("2,000 anonymous reads make the workers flush the disk a fraction as often: appends wait for no flush")
    func readsDoNotFlushEach() async throws {
        let stack = try await Stack("video-visits-sync", workers: 2)
        defer { stack.stop() }
        #expect(try await Self.catalogueVideo12345(stack) == 201)

        // Every flush LMDB can make (mdb_env_sync is fdatasync, or msync with a writable map),
        // counted in both workers while the reads run.
        let trace = stack.directory.appendingPathComponent("sync.trace")
        let strace = try ChildProcess("strace-sync", executable: "/usr/bin/strace",
                                      arguments: ["-f", "-qq", "-e", "trace=fsync,fdatasync,msync,sync_file_range", "-o", trace.path]
                                          + stack.workers.flatMap { ["-p", String($0.pid)] },
                                      logDirectory: stack.directory)
        defer { strace.stop() }
        try await Task.sleep(for: .seconds(1))

        let reads = 2_000
        let client = stack.client
        let statuses = await concurrently(reads, width: 16) { index in
            (try? await client.get("/video/12345", headers: ["User-Agent": "sync-probe/\(index)"]).status) ?? 0
        }
        #expect(statuses.allSatisfy { $0 == 200 }, "\(Dictionary(grouping: statuses, by: { $0 }).mapValues(\.count))")
        try await VideoCatalogueTests.waitUntilDrained(stack, timeout: .seconds(60))
        strace.signal(SIGTERM)
        #expect(strace.waitForExit(timeout: .seconds(20)) != nil, "strace detached")

        let calls = try String(contentsOf: trace, encoding: .utf8).split(separator: "\n").filter { $0.contains("sync(") }
        print("\(reads) reads, \(calls.count) flushes")
        #expect(calls.count < reads / 5, "\(calls.count) flushes for \(reads) reads")
    }

    static let anonymousReads = 20_000
    /// What 20,000 reads with the largest user agents may leave in the store, counting every
    /// page the trees hold (`StoreStats.usedBytes`); before visits were bounded they wrote
    /// 297 MB and filled the test's 256 MiB map.
    static let usedBytesBound = 1 << 20
    /// The data file, which also keeps the pages freed while readers held older snapshots.
    static let fileBytesBound = 32 << 20

    @Test("20,000 anonymous reads with the largest user agents leave the store under 1 MiB used; users and streams still work")
    func anonymousReadsAreBounded() async throws {
        let stack = try await Stack("video-visits-bound", workers: 2)
        defer { stack.stop() }
        #expect(try await Self.catalogueVideo12345(stack) == 201)

        let script = stack.directory.appendingPathComponent("visits.lua")
        let finished = stack.directory.appendingPathComponent("wrk-threads-done")
        try Self.wrkScript(reads: Self.anonymousReads, threads: 2, finished: finished.path).write(to: script, atomically: true, encoding: .utf8)
        let started = ContinuousClock.now
        let wrk = try ChildProcess("wrk", executable: "/usr/bin/wrk",
                                   arguments: ["-t2", "-c16", "-d100s", "--timeout", "10s", "-s", script.path,
                                               "http://127.0.0.1:\(stack.port)/video/12345"],
                                   logDirectory: stack.directory)
        defer { wrk.stop() }
        // wrk's threads stop at their share of reads, but wrk itself waits out -d unless interrupted.
        while wrk.process.isRunning, ((try? String(contentsOf: finished, encoding: .utf8)) ?? "").count < 2,
              ContinuousClock.now - started < .seconds(100) {
            try await Task.sleep(for: .milliseconds(100))
        }
        wrk.signal(SIGINT)
        let status = wrk.waitForExit(timeout: .seconds(10))
        let output = wrk.log
        try #require(status == 0, "wrk: \(output)")
        let figures = Self.figures(in: output)
        let requests = try #require(figures["requests"], "wrk: \(output)")
        #expect(requests >= Self.anonymousReads, "wrk stopped early: \(output)")
        #expect(figures["non2xx"] == 0, "every read answered 2xx: \(output)")
        #expect(figures["errors"] == 0, "\(output)")
        #expect(ContinuousClock.now - started < .seconds(100))

        try await VideoCatalogueTests.waitUntilDrained(stack, timeout: .seconds(60))
        let directory = stack.directory.appendingPathComponent("store")
        let store = try Store.open(StoreOptions(directory: directory.path, maxBytes: 256 << 20))
        let stats = try store.stats()
        let fileBytes = try #require(try FileManager.default.attributesOfItem(atPath: directory.appendingPathComponent("data.mdb").path)[.size] as? Int)
        print("after \(requests) reads: \(stats.entries) entries, \(stats.usedBytes) bytes used, data.mdb \(fileBytes) bytes")
        #expect(stats.usedBytes < Self.usedBytesBound)
        #expect(fileBytes < Self.fileBytesBound)

        let table = LMDBVisitStore(store: store)
        let count = try table.count(of: "12345")
        #expect(count >= requests && count <= requests + 16, "every answered read is counted")
        let recent = try table.visits(of: "12345", limit: .max)
        #expect(recent.count == Visit.recentKept)
        #expect(recent.allSatisfy { $0.userAgent.utf8.count <= Visit.maxUserAgentBytes && $0.encoded().count <= Visit.maxEncodedBytes })
        let cluster = "a" + VideoVisitUnitTests.combiningMarks
        #expect(recent.contains { $0.userAgent == String(repeating: cluster, count: 17) }, "the combining-marks agent is cut to whole characters")
        #expect(try VisitOutbox(store: store).figures().queued == 0)

        let created = try await stack.createUser("777")
        #expect(created.status == 201)
        let granted = try await stack.grant("777", "stream_1")
        #expect(granted.status == 201)
        #expect(try await stack.activeStreams("777") == ["stream_1"])
    }

    /// wrk sends `reads` reads over its connections, cycling through the largest user agents a
    /// client can send through nginx's 16 KiB header buffers, and reports its counts. Each
    /// thread adds a byte to `finished` when it has its share.
    static func wrkScript(reads: Int, threads: Int, finished: String) -> String {
        """
        local marks = ""
        for i = 0, 13 do marks = marks .. string.char(0xCC, 0x80 + i) end
        local agents = {
          string.rep("a" .. marks, 512),
          string.rep("\\240\\159\\152\\128", 3000),
          string.rep('"', 12000),
          string.rep("\\\\", 12000),
          string.rep("\\255", 12000),
          string.rep("a\\t", 6000),
        }
        local perThread = \(reads / threads)
        local sent = 0
        local answered = 0
        request = function()
          sent = sent + 1
          return wrk.format("GET", nil, { ["User-Agent"] = agents[sent % #agents + 1] })
        end
        response = function(status, headers, body)
          answered = answered + 1
          if answered == perThread then
            local file = io.open("\(finished)", "a")
            file:write("x")
            file:close()
            wrk.thread:stop()
          end
        end
        done = function(summary, latency, requests)
          local e = summary.errors
          io.write(string.format("requests=%d non2xx=%d errors=%d\\n", summary.requests, e.status,
            e.connect + e.read + e.write + e.timeout))
        end
        """
    }

    static func figures(in output: String) -> [String: Int] {
        var figures: [String: Int] = [:]
        for word in output.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
            let parts = word.split(separator: "=", maxSplits: 1)
            if parts.count == 2, let value = Int(parts[1]) { figures[String(parts[0])] = value }
        }
        return figures
    }

    /// Reads until the ledger has its 10,000 successes. A failed read is retried as a new read
    /// with its own user agent, so that each stored visit names the one attempt it came from.
    /// Puts the fixture video 12345 in the catalogue; the status of the PUT.
    static func catalogueVideo12345(_ stack: Stack) async throws -> Int {
        try await stack.client.request("PUT", "/api/v1/videos/12345", headers: ["Authorization": "Bearer \(Stack.adminToken)"],
                                       body: try VideoFixtures.data("video-12345.json")).status
    }

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
