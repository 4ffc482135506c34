import Foundation
import LMDBStore
import Synchronization
import Testing

@Suite("Store")
struct StoreTests {
    @Test("4 processes × 1,000 increments of one counter give exactly 4,000")
    func concurrentIncrements() throws {
        let directory = StoreFixture.directory("increments")
        defer { StoreFixture.remove(directory) }
        let writers = try (0..<4).map { _ in
            try StoreFixture.stress(["increment", directory, "counter", "1000"])
        }
        for writer in writers {
            writer.waitUntilExit()
            #expect(writer.terminationStatus == 0)
        }
        let store = try Store.open(StoreOptions(directory: directory, maxBytes: 64 << 20))
        #expect(try store.get("counter").map { String(decoding: $0, as: UTF8.self) } == "4000")
    }

    @Test("4 processes × 2,000,000 turns of a shared counter lose none")
    func sharedCounter() throws {
        let directory = StoreFixture.directory("shared-counter")
        defer { StoreFixture.remove(directory) }
        let counters = try (0..<4).map { _ in try StoreFixture.stress(["count", directory, "cursor", "2000000"]) }
        for counter in counters {
            counter.waitUntilExit()
            #expect(counter.terminationStatus == 0)
        }
        let store = try Store.open(StoreOptions(directory: directory, maxBytes: 64 << 20))
        #expect(try store.counter("cursor").current == 8_000_000)
        #expect(throws: StoreError.self) { try store.counter("../escape") }
    }

    @Test("kill -9 of a writer mid-loop leaves a store that opens, reads and takes writes")
    func killedWriter() throws {
        let directory = StoreFixture.directory("killed")
        defer { StoreFixture.remove(directory) }
        let output = Pipe()
        let writer = try StoreFixture.stress(["write-forever", directory], output: output)
        defer { if writer.isRunning { kill(writer.processIdentifier, SIGKILL) } }
        // Wait until it has committed at least once, then kill it inside its write loop.
        _ = output.fileHandleForReading.availableData
        usleep(300_000)
        kill(writer.processIdentifier, SIGKILL)
        writer.waitUntilExit()
        #expect(writer.terminationReason == .uncaughtSignal)

        let store = try Store.open(StoreOptions(directory: directory, maxBytes: 64 << 20))
        store.clearStaleReaders()
        let rounds = try #require(try store.get("crash/rounds").flatMap { Int(String(decoding: $0, as: UTF8.self)) })
        #expect(rounds > 0)
        // Every slot holds one whole round: a commit is all or nothing.
        let slots = try store.scan(prefix: "crash/", limit: 100).filter { $0.key != "crash/rounds" }
        #expect(slots.count == 50)
        let roundsSeen = Set(slots.map { $0.entry.value.first! })
        #expect(roundsSeen.count == 1)
        #expect(slots.allSatisfy { $0.entry.value.count == 2048 })
        try store.put("after-crash", Array("ok".utf8), as: .state)
        #expect(try store.get("after-crash") == Array("ok".utf8))
    }

    @Test("a time-to-live expires; the expired entry stays readable as stale until evicted")
    func timeToLive() throws {
        let store = try StoreFixture.open("ttl")
        try store.put("short", Array("v".utf8), ttl: .milliseconds(150), as: .disposable)
        try store.put("forever", Array("v".utf8), as: .state)
        #expect(try store.get("short") != nil)
        usleep(250_000)
        #expect(try store.get("short") == nil)
        #expect(try store.entry("short")?.isExpired() == true)
        #expect(try store.get("forever") != nil)
    }

    @Test("a full map evicts expired entries first, then the oldest, never state, and never fails a write")
    func boundedSize() throws {
        let store = try StoreFixture.open("bounded", maxBytes: 16 << 20)
        try store.put("state/user", Array("kept".utf8), as: .state)
        try store.put("cache/expired", Array(repeating: 1, count: 1000), ttl: .milliseconds(1), as: .disposable)
        usleep(5_000)
        let payload = Array(repeating: UInt8(7), count: 16 * 1024)
        // Four times what the map holds: every put must still succeed.
        for index in 0..<4_000 {
            try store.put("cache/\(index)", payload, ttl: .seconds(3600), as: .disposable)
        }
        #expect(try store.get("state/user") == Array("kept".utf8))
        #expect(try store.entry("cache/expired") == nil)
        #expect(try store.get("cache/0") == nil, "the oldest entries went first")
        #expect(try store.get("cache/3999") != nil, "the newest entry stays")
        let stats = try store.stats()
        #expect(Double(stats.usedBytes) < Double(stats.mapBytes) * 0.85)
    }

    @Test("prefix scan, delete and purge")
    func scanDeletePurge() throws {
        let store = try StoreFixture.open("scan")
        for name in ["a/1", "a/2", "a/3", "b/1"] { try store.put(name, Array(name.utf8), as: .state) }
        #expect(try store.scan(prefix: "a/").map(\.key) == ["a/1", "a/2", "a/3"])
        #expect(try store.scan(prefix: "a/", after: "a/1", limit: 1).map(\.key) == ["a/2"])
        #expect(try store.delete("a/2"))
        #expect(try !store.delete("a/2"))
        #expect(try store.purge(prefix: "a/") == 2)
        #expect(try store.scan(prefix: "").map(\.key) == ["b/1"])
    }

    @Test("a lease has one holder; a dead holder's lease is taken over at once")
    func leases() throws {
        let store = try StoreFixture.open("lease")
        #expect(try store.acquireLease("job", ttl: .seconds(30), owner: "\(getpid())@\(Self.host)/a"))
        #expect(try !store.acquireLease("job", ttl: .seconds(30), owner: "\(getpid())@\(Self.host)/b"))
        #expect(try store.acquireLease("job", ttl: .seconds(30), owner: "\(getpid())@\(Self.host)/a"), "the holder renews")
        #expect(try store.releaseLease("job", owner: "\(getpid())@\(Self.host)/a"))
        #expect(try store.acquireLease("job", ttl: .seconds(30), owner: "\(getpid())@\(Self.host)/b"))

        let gone = Process()
        gone.executableURL = URL(fileURLWithPath: "/bin/true")
        try gone.run()
        gone.waitUntilExit()
        #expect(try store.acquireLease("orphan", ttl: .seconds(30), owner: "\(gone.processIdentifier)@\(Self.host)"))
        #expect(try store.acquireLease("orphan", ttl: .seconds(30), owner: "\(getpid())@\(Self.host)/c"))
    }

    @Test("single flight: 16 threads asking for a missing value compute it once")
    func singleFlight() async throws {
        let store = try StoreFixture.open("flight")
        let computations = Counter()
        try await withThrowingTaskGroup(of: Fetched.self) { group in
            for _ in 0..<16 {
                group.addTask {
                    try store.fetch("slow", wait: .seconds(5)) {
                        computations.increment()
                        usleep(200_000)
                        return (Array("value".utf8), .seconds(60))
                    }
                }
            }
            for try await fetched in group {
                #expect(fetched.entry.value == Array("value".utf8))
            }
        }
        #expect(computations.value == 1)
    }

    @Test("single flight: a caller gets the stale value while another leads; a failure is not cached")
    func singleFlightStaleAndFailure() throws {
        let store = try StoreFixture.open("stale")
        try store.put("k", Array("old".utf8), ttl: .milliseconds(1), as: .disposable)
        usleep(5_000)
        let stale = try store.fetch("k", wait: .seconds(1)) {
            // While this call leads, another caller is answered from the expired entry.
            let other = try store.fetch("k", wait: .seconds(1)) { Issue.record("second leader"); return ([], .seconds(1)) }
            #expect(other.source == .stale)
            #expect(other.entry.value == Array("old".utf8))
            return (Array("new".utf8), .seconds(60))
        }
        #expect(stale.source == .computed)
        #expect(try store.get("k") == Array("new".utf8))

        struct Broken: Error {}
        #expect(throws: Broken.self) {
            try store.fetch("missing", wait: .seconds(1), failurePayload: { _ in Array("upstream down".utf8) }) { throw Broken() }
        }
        // The failure is not cached for later callers: the next one leads again.
        let retried = try store.fetch("missing", wait: .seconds(1)) { (Array("fine".utf8), .seconds(1)) }
        #expect(retried.source == .computed)
    }

    @Test("4 processes fill a 4 MiB map past full: none crashes, every write is answered, deletes make room again")
    func mapFullUnderConcurrentWriters() throws {
        let directory = StoreFixture.directory("map-full")
        defer { StoreFixture.remove(directory) }
        let writes = 4_000
        let writers = try (0..<4).map { index in
            let output = Pipe()
            return (try StoreFixture.stress(["fill", directory, "4", "p\(index)", "\(writes)", "4"], output: output), output)
        }
        var refused = 0
        for (writer, output) in writers {
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            writer.waitUntilExit()
            #expect(writer.terminationReason == .exit, "killed by signal \(writer.terminationStatus): \(text)")
            #expect(writer.terminationStatus == 0, "\(text)")
            // `stored N full M`: every write got one of the two answers.
            let numbers = text.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { Int($0) }
            #expect(numbers.count == 2 && numbers[0] + numbers[1] == writes, "\(text)")
            refused += numbers.last ?? 0
            #expect(numbers.first ?? 0 > 0, "every writer wrote before the map filled: \(text)")
        }
        #expect(refused > 0, "the map filled up")

        let store = try Store.open(StoreOptions(directory: directory, maxBytes: 4 << 20))
        let big = Array(repeating: UInt8(1), count: 12 * 1024)
        do {
            try store.put("after/full", big, as: .state)
            Issue.record("a 12 KiB write fitted into the full map")
        } catch let error as StoreError {
            #expect(error.isFull, "\(error)")
        }
        // Deletes one at a time, as an operator would: each must find room.
        let victims = try store.scan(prefix: "fill/", limit: 100)
        #expect(victims.count == 100)
        for victim in victims { #expect(try store.delete(victim.key)) }
        try store.put("after/full", big, as: .state)
        #expect(try store.get("after/full") == big)

        let again = Pipe()
        let writer = try StoreFixture.stress(["fill", directory, "4", "again", "20"], output: again)
        let text = String(decoding: again.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        writer.waitUntilExit()
        #expect(writer.terminationStatus == 0 && text.hasPrefix("stored "), "\(text)")
        #expect(!text.hasPrefix("stored 0 "), "another process writes again without a restart: \(text)")
    }

    @Test("disposable writes stop at the reserve; state writes still find room and are never evicted")
    func reserveForState() throws {
        let store = try StoreFixture.open("reserve", maxBytes: 4 << 20)
        let chunk = Array(repeating: UInt8(3), count: 4096)
        var disposable = 0
        var refusal: StoreError?
        while refusal == nil && disposable < 2_000 {
            do {
                // Without a time-to-live, as visits are: nothing for eviction to take.
                try store.put("visit/\(disposable)", chunk, as: .disposable)
                disposable += 1
            } catch let error as StoreError {
                refusal = error
            }
        }
        let refused = try #require(refusal, "disposable writes filled the whole map")
        #expect(refused.isFull && !refused.isMapFull, "\(refused)")
        #expect(refused.description.contains("kept for state"), "\(refused)")
        #expect(try store.room().disposableRefused)
        let used = Double(try store.stats().usedBytes) / Double(4 << 20)
        #expect(used > 0.80 && used < 0.90, "disposable writes stopped at the 85% ceiling, not at \(used)")

        // Accounts and streams: the reserve takes at least 100 of them.
        for index in 0..<100 {
            try store.write(.state, durable: true) { txn in
                try txn.put("user/\(index)", Array(repeating: 7, count: 1024))
                try txn.put("streams/\(index)", Array("granted".utf8))
            }
        }
        // A cache entry with a time-to-live is refused too: there is no cache left to evict.
        #expect(throws: StoreError.self) { try store.put("cache/x", chunk, ttl: .seconds(60), as: .disposable) }
        #expect(try store.get("user/99") != nil)
        #expect(try store.get("visit/0") == chunk, "disposable entries without a time-to-live are refused, not evicted")

        // A single-flight fill still answers its caller, unstored, and leaves no lease.
        let leases = try store.stats().leases
        let fetched = try store.fetch("cache/fetched", wait: .seconds(1)) { (chunk, .seconds(60)) }
        #expect(fetched.source == .computed && fetched.entry.value == chunk)
        #expect(try store.entry("cache/fetched") == nil)
        #expect(try store.stats().leases == leases)
    }

    @Test("a state write evicts cache entries before it is refused")
    func cacheEvictedForState() throws {
        let store = try StoreFixture.open("cache-first", maxBytes: 4 << 20)
        let chunk = Array(repeating: UInt8(5), count: 4096)
        for index in 0..<2_000 { try store.put("cache/\(index)", chunk, ttl: .seconds(3600), as: .disposable) }
        for index in 0..<400 { try store.put("user/\(index)", chunk, as: .state) }
        #expect(try store.get("user/0") == chunk)
        #expect(try store.get("cache/0") == nil)
    }

    @Test("a failed fill's lease is kept for its waiters, then swept")
    func failedFillLeaseSwept() throws {
        let store = try StoreFixture.open("lease-sweep")
        let base = try store.stats().leases
        struct Broken: Error {}
        for index in 0..<5 {
            #expect(throws: Broken.self) { try store.fetch("film/\(index)", wait: .seconds(1)) { throw Broken() } }
        }
        #expect(try store.stats().leases == base + 5, "the failures are readable by waiters for a while")
        #expect(try store.sweepLeases() == 0, "not before their time")
        usleep(2_200_000)
        #expect(try store.sweepLeases() == 5)
        #expect(try store.stats().leases == base)
    }

    static let host: String = {
        let owner = Lease.processOwner
        return String(owner[owner.index(after: owner.firstIndex(of: "@")!)...])
    }()
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func increment() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}

enum StoreFixture {
    static func directory(_ label: String) -> String {
        let path = NSTemporaryDirectory() + "marquee-store-\(label)-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func remove(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// A store in a fresh directory, removed when the test process exits: the process keeps
    /// the environment open until then.
    static func open(_ label: String, maxBytes: Int = 64 << 20) throws -> Store {
        let path = directory(label)
        openDirectories.withLock { directories in
            if directories.isEmpty { atexit { StoreFixture.openDirectories.withLock { $0.forEach(StoreFixture.remove) } } }
            directories.append(path)
        }
        return try Store.open(StoreOptions(directory: path, maxBytes: maxBytes))
    }

    private static let openDirectories = Mutex<[String]>([])

    static func stress(_ arguments: [String], output: Pipe? = nil) throws -> Process {
        let process = Process()
        var url = URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0])
        while !FileManager.default.isExecutableFile(atPath: url.appendingPathComponent("StoreStress").path) && url.path != "/" {
            url.deleteLastPathComponent()
        }
        process.executableURL = url.appendingPathComponent("StoreStress")
        process.arguments = arguments
        if let output { process.standardOutput = output }
        try process.run()
        return process
    }
}
