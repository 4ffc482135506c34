import Foundation
import Synchronization
import Testing

/// Three hosts on one machine (a network namespace each, with its own nginx, two workers and its
/// own LMDB store) behind the sample front load balancer: what a cluster must keep doing when
/// one of its hosts dies.
@Suite("Multi-host cluster", .serialized, .timeLimit(.minutes(5)))
struct MultiHostTests {
    /// Requests a load loop sent and what came back, by status (0: no answer at all).
    final class Tally: Sendable {
        private let counts = Mutex<[String: [Int: Int]]>([:])

        func add(_ kind: String, _ status: Int) {
            counts.withLock { $0[kind, default: [:]][status, default: 0] += 1 }
        }

        func statuses(_ kind: String) -> [Int: Int] { counts.withLock { $0[kind] ?? [:] } }
        func total(_ kind: String) -> Int { statuses(kind).values.reduce(0, +) }
        func count(_ kind: String, _ status: Int) -> Int { statuses(kind)[status] ?? 0 }
    }

    /// The routes every host answers from its own LMDB once warmed: the movies catalogue, a
    /// trailer answer and health.
    static let cachedRoutes = ["/api/v1/movies", TrailersFixtures.path(TrailersFixtures.arrival), "/api/v1/health"]

    /// Warms every host's own cache directly, not through the front, so that each serves the
    /// cached routes from its LMDB store.
    static func warm(_ cluster: Cluster) async throws {
        for index in cluster.hosts.indices {
            for route in cachedRoutes {
                let warmed = try await eventually(within: .seconds(30)) { await cluster.host(index).status(route) == 200 }
                #expect(warmed, "host \(index + 1) never answered \(route) with 200")
            }
        }
    }

    /// `concurrency` loops sending GETs of the cached routes through the front until `until`.
    static func readLoad(_ cluster: Cluster, tally: Tally, concurrency: Int, until deadline: ContinuousClock.Instant) async {
        await withTaskGroup(of: Void.self) { group in
            for loop in 0..<concurrency {
                group.addTask {
                    var index = loop
                    while ContinuousClock.now < deadline {
                        let route = cachedRoutes[index % cachedRoutes.count]
                        index += 1
                        let status = (try? await cluster.client.request("GET", route, timeout: 15).status) ?? 0
                        tally.add("read", status)
                    }
                }
            }
        }
    }

    @Test("kill -9 of every process of host 1 under load: the front keeps answering the cached routes through hosts 2 and 3")
    func hostDiesUnderLoad() async throws {
        let cluster = try await Cluster("multihost-kill")
        defer { cluster.stop() }
        try await Self.warm(cluster)
        let before = cluster.upstream.calls("/films")

        let servedBefore = cluster.hosts.indices.map { cluster.served(byHost: $0) }
        let tally = Tally()
        let start = ContinuousClock.now
        let killedAt = start + .seconds(2)
        let deadline = start + .seconds(8)
        async let load: Void = Self.readLoad(cluster, tally: tally, concurrency: 16, until: deadline)
        try await Task.sleep(until: killedAt)
        let pids = cluster.network.pids(ofHost: 0)
        let killed = cluster.killHost(0)
        await load

        #expect(pids.count >= 4, "host 1 ran nginx (master and worker) and two marquee workers: \(pids)")
        #expect(killed >= pids.count, "killed \(killed) of \(pids)")
        #expect(cluster.network.pids(ofHost: 0).isEmpty, "host 1 still runs \(cluster.network.pids(ofHost: 0))")
        let reads = tally.statuses("read")
        #expect(tally.total("read") > 300, "the load ran: \(reads)")
        // The front retries a GET that found host 1 dead on another host: no client sees it.
        #expect(reads.keys.sorted() == [200], "every read answered 200 through hosts 2 and 3: \(reads)")
        // After the kill every answer came from hosts 2 and 3, and from their own caches.
        let afterKill = try await cluster.client.get("/api/v1/movies")
        #expect(afterKill.status == 200)
        #expect(cluster.upstream.calls("/films") == before, "cached reads called the upstream")
        let servedAfter = cluster.hosts.indices.map { cluster.served(byHost: $0) - servedBefore[$0] }
        #expect(servedAfter[1] > 0 && servedAfter[2] > 0, "hosts 2 and 3 served the load: \(servedAfter)")
        let hosts23 = await [cluster.host(1).status("/api/v1/health"), cluster.host(2).status("/api/v1/health")]
        #expect(hosts23 == [200, 200])
    }

    @Test("the front load balancer renders from nginx/ and spreads requests over every host")
    func frontSpreadsOverHosts() async throws {
        let cluster = try await Cluster("multihost-front")
        defer { cluster.stop() }
        let rendered = try String(contentsOf: cluster.directory.appendingPathComponent("nginx/marquee.conf"), encoding: .utf8)
        for index in cluster.hosts.indices {
            #expect(rendered.contains("server \(cluster.network.address(ofHost: index)):\(Cluster.hostPort) max_fails=2 fail_timeout=5s;"))
        }
        let before = cluster.hosts.indices.map { cluster.served(byHost: $0) }
        for _ in 0..<60 {
            #expect(try await cluster.client.get("/api/v1/health").status == 200)
        }
        // nginx writes its access log line as each request ends: give it a moment.
        let spread = try await eventually(within: .seconds(5)) {
            cluster.hosts.indices.map { cluster.served(byHost: $0) - before[$0] }.reduce(0, +) >= 60
        }
        let perHost = cluster.hosts.indices.map { cluster.served(byHost: $0) - before[$0] }
        #expect(spread, "the hosts logged \(perHost) of 60 requests")
        #expect(perHost.allSatisfy { $0 >= 10 }, "every host served a share of 60 requests: \(perHost)")
    }
}
