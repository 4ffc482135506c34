import Foundation
import Testing

/// The stream limit under simultaneous requests on several workers, and durability under kill -9.
@Suite("UsersConcurrency", .serialized)
struct UsersConcurrencyTests {
    @Test("200 simultaneous grants with distinct streams over 4 workers: exactly 3 × 201 and 197 × 409, 20 times", arguments: StorageMode.allCases)
    func simultaneousGrants(_ storage: StorageMode) async throws {
        let stack = try await Stack("users-burst", workers: 4, storage: storage)
        defer { stack.stop() }
        for round in 0..<20 {
            let user = "burst-\(round)"
            #expect(try await stack.createUser(user).status == 201)
            let statuses = await concurrently(200) { index in
                (try? await stack.grant(user, "stream-\(round)-\(index)").status) ?? 0
            }
            let granted = statuses.filter { $0 == 201 }.count
            let refused = statuses.filter { $0 == 409 }.count
            #expect(granted == 3 && refused == 197, "round \(round): \(granted) granted, \(refused) refused, others \(statuses.filter { $0 != 201 && $0 != 409 })")
            #expect(try await stack.activeStreams(user)?.count == 3)
        }
        // The grants spread over the workers: the limit held across processes, not inside one.
        let granting = stack.workers.filter { $0.log.contains(#""route":"/api/v1/users/{id}/streams""#) }
        #expect(granting.count >= 2, "only \(granting.count) of 4 workers answered grants")
    }

    @Test("kill -9 of a worker every 2 s during a storm of creates and grants: every 2xx is in the store afterwards", arguments: StorageMode.allCases)
    func killDuringStorm(_ storage: StorageMode) async throws {
        let stack = try await Stack("users-storm", workers: 3, storage: storage)
        defer { stack.stop() }
        let acknowledged = Acknowledged()
        let stop = StopFlag()

        let clients = (0..<12).map { client in
            Task {
                var serial = 0
                while !stop.isSet {
                    serial += 1
                    let user = "storm-\(client)-\(serial)"
                    guard (try? await stack.createUser(user).status) == 201 else { continue }
                    acknowledged.user(user)
                    for stream in 0..<4 {
                        let name = "s\(stream)"
                        if (try? await stack.grant(user, name).status) == 201 { acknowledged.stream(name, of: user) }
                    }
                }
            }
        }
        var killed = 0
        let stormStart = ContinuousClock.now
        while ContinuousClock.now - stormStart < .seconds(8) {
            try await Task.sleep(for: .seconds(2))
            let running = stack.workers.filter(\.isRunning)
            guard let victim = running.randomElement() else { continue }
            victim.signal(SIGKILL)
            _ = victim.waitForExit(timeout: .seconds(5))
            killed += 1
            try stack.startWorker()
        }
        stop.set()
        for client in clients { await client.value }
        try await stack.waitUntilHealthy()

        let (users, streams) = acknowledged.snapshot()
        #expect(killed >= 3)
        #expect(users.count > 50, "the storm got only \(users.count) creates through")
        var missingUsers: [String] = []
        var missingStreams: [String] = []
        for user in users {
            guard let active = try await stack.activeStreams(user) else {
                missingUsers.append(user)
                continue
            }
            for stream in streams[user, default: []] where !active.contains(stream) {
                missingStreams.append("\(user)/\(stream)")
            }
        }
        #expect(missingUsers.isEmpty, "acknowledged but missing: \(missingUsers)")
        #expect(missingStreams.isEmpty, "acknowledged but missing: \(missingStreams)")
        // The limit held through the kills, too.
        for user in users.prefix(50) {
            #expect((try await stack.activeStreams(user)?.count ?? 0) <= 3)
        }
    }
}

/// What the server acknowledged with a 2xx during the storm.
final class Acknowledged: @unchecked Sendable {
    private let lock = NSLock()
    private var users: [String] = []
    private var streams: [String: [String]] = [:]

    func user(_ id: String) { lock.withLock { users.append(id) } }
    func stream(_ stream: String, of user: String) { lock.withLock { streams[user, default: []].append(stream) } }
    func snapshot() -> (users: [String], streams: [String: [String]]) { lock.withLock { (users, streams) } }
}

final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}
