import Foundation
@testable import Marquee
import Testing

/// Three hosts sharing one PostgreSQL (on the bridge address every namespace reaches), behind the
/// sample front load balancer: the records of truth and the upstreams' quotas hold across hosts.
@Suite("Multi-host cluster with PostgreSQL", .serialized, .timeLimit(.minutes(6)))
struct MultiHostDatabaseTests {
    typealias Tally = MultiHostTests.Tally

    @Test("a user created through host 1 is read through hosts 2 and 3 at once")
    func userCreatedOnOneHostIsReadOnTheOthers() async throws {
        let cluster = try await Cluster("multihost-users", database: true)
        defer { cluster.stop() }
        let created = try await cluster.host(0).admin("POST", "/api/v1/users",
                                                     json: ["id": "ada", "name": "Ada Lovelace", "subscription": "premium"])
        #expect(created.status == 201, "\(created.text)")
        async let second = cluster.host(1).admin("GET", "/api/v1/users/ada")
        async let third = cluster.host(2).admin("GET", "/api/v1/users/ada")
        let reads = try await [second, third]
        for (index, read) in reads.enumerated() {
            #expect(read.status == 200, "host \(index + 2): \(read.text)")
            #expect(read.json()?["name"] as? String == "Ada Lovelace", "host \(index + 2): \(read.text)")
        }
    }

    @Test("300 concurrent grants for one user, spread over the three hosts: exactly the limit, 5 times over")
    func streamLimitIsExactAcrossHosts() async throws {
        let cluster = try await Cluster("multihost-grants", database: true)
        defer { cluster.stop() }
        for round in 1...5 {
            let user = "viewer-\(round)"
            #expect(try await cluster.host(round % 3).admin("POST", "/api/v1/users",
                                                           json: ["id": user, "name": "Viewer", "subscription": "basic"]).status == 201)
            let statuses = await concurrently(300, width: 300) { index in
                let host = cluster.host(index % 3)
                return (try? await host.admin("POST", "/api/v1/users/\(user)/streams", json: ["stream": "s\(index)"]).status) ?? 0
            }
            let granted = statuses.filter { $0 == 201 }.count
            let refused = statuses.filter { $0 == 409 }.count
            let summary = "round \(round): \(Dictionary(grouping: statuses, by: { $0 }).mapValues(\.count))"
            #expect(granted == 3, "\(summary)")
            #expect(refused == 297, "\(summary)")
            let rows = try cluster.postgres!.psql("SELECT cardinality(streams) FROM users WHERE id = '\(user)'")
            #expect(rows == "3", "round \(round): the database holds \(rows) streams")
        }
    }

    @Test("kill -9 of every process of host 1 under writes: every acknowledged write is in the database")
    func acknowledgedWritesSurviveAHostKill() async throws {
        let cluster = try await Cluster("multihost-killw", database: true)
        defer { cluster.stop() }
        try await MultiHostTests.warm(cluster)
        let tally = Tally()
        let acknowledged = AcknowledgedIds()
        let start = ContinuousClock.now
        let deadline = start + .seconds(8)
        async let reads: Void = MultiHostTests.readLoad(cluster, tally: tally, concurrency: 8, until: deadline)
        async let writes: Void = withTaskGroup(of: Void.self) { group in
            for loop in 0..<8 {
                group.addTask {
                    var sequence = 0
                    while ContinuousClock.now < deadline {
                        sequence += 1
                        let id = "w\(loop)-\(sequence)"
                        let status = (try? await cluster.client.admin("POST", "/api/v1/users",
                                                                      json: ["id": id, "name": "Writer", "subscription": "basic"]).status) ?? 0
                        tally.add("write", status)
                        if status == 201 { acknowledged.add(id) }
                    }
                }
            }
        }
        try await Task.sleep(until: start + .seconds(3))
        let killed = cluster.killHost(0)
        _ = await (reads, writes)

        #expect(killed >= 4)
        #expect(tally.statuses("read").keys.sorted() == [200], "reads through the front: \(tally.statuses("read"))")
        let written = tally.statuses("write")
        // A write in flight on host 1 when it died has no answer the front may retry (it was
        // sent): 502. Every other write is acknowledged.
        #expect(acknowledged.count > 100 && written.filter { $0.key != 201 }.values.reduce(0, +) <= 16,
                "writes through the front: \(written)")
        let stored = Set(try cluster.postgres!.psql("SELECT id FROM users WHERE id LIKE 'w%'").split(separator: "\n").map(String.init))
        let missing = acknowledged.all.subtracting(stored)
        #expect(missing.isEmpty, "\(missing.count) of \(acknowledged.count) acknowledged users are not in the database: \(missing.sorted().prefix(10))")
        print("multi-host kill: \(acknowledged.count) writes acknowledged, all \(acknowledged.count - missing.count) in the database; \(stored.count) rows; reads \(tally.statuses("read")); writes \(written)")
    }

    @Test("PostgreSQL stopped for 5 s under load: cached reads 200, writes 503 database_unavailable in time, then writes succeed with no worker restarted")
    func databaseOutage() async throws {
        let cluster = try await Cluster("multihost-dbdown", database: true)
        defer { cluster.stop() }
        try await MultiHostTests.warm(cluster)
        let workerPids = cluster.hosts.map { $0.workers.map(\.pid) }
        let postgres = try #require(cluster.postgres)
        #expect(try await cluster.client.admin("POST", "/api/v1/users", json: ["id": "before", "name": "B", "subscription": "basic"]).status == 201)

        postgres.stop()
        let downAt = ContinuousClock.now
        let tally = Tally()
        let slowest = SlowestAnswer()
        let downDeadline = downAt + .seconds(5)
        async let reads: Void = MultiHostTests.readLoad(cluster, tally: tally, concurrency: 8, until: downDeadline)
        async let writes: Void = withTaskGroup(of: Void.self) { group in
            for loop in 0..<4 {
                group.addTask {
                    var sequence = 0
                    while ContinuousClock.now < downDeadline {
                        sequence += 1
                        let sent = ContinuousClock.now
                        let answer = try? await cluster.client.admin("POST", "/api/v1/users",
                                                                     json: ["id": "down\(loop)-\(sequence)", "name": "D", "subscription": "basic"])
                        slowest.saw(ContinuousClock.now - sent)
                        tally.add("write", answer?.status ?? 0)
                        tally.add("write:" + (answer?.errorCode ?? "none"), answer?.status ?? 0)
                        try? await Task.sleep(for: .milliseconds(20))
                    }
                }
            }
        }
        _ = await (reads, writes)
        try postgres.start()

        #expect(tally.total("read") > 100 && tally.statuses("read").keys.sorted() == [200], "cached reads while down: \(tally.statuses("read"))")
        #expect(tally.total("write") > 20 && tally.statuses("write").keys.sorted() == [503], "writes while down: \(tally.statuses("write"))")
        #expect(tally.count("write:database_unavailable", 503) == tally.total("write"), "every refusal says database_unavailable")
        // Within the statement timeout (2 s by default), with room for a loaded machine.
        #expect(slowest.value < .seconds(4), "the slowest refusal took \(slowest.value)")

        let recovered = try await eventually(within: .seconds(15)) {
            (try? await cluster.client.admin("POST", "/api/v1/users", json: ["id": "after-\(UUID().uuidString.prefix(6))", "name": "A", "subscription": "basic"]).status) == 201
        }
        #expect(recovered, "writes succeed again after PostgreSQL is back")
        // Every host's workers write again, each on its own connections.
        for index in cluster.hosts.indices {
            let ok = try await eventually(within: .seconds(15)) {
                (try? await cluster.host(index).admin("POST", "/api/v1/users", json: ["id": "host\(index)-\(UUID().uuidString.prefix(6))", "name": "H", "subscription": "basic"]).status) == 201
            }
            #expect(ok, "host \(index + 1) writes again")
        }
        #expect(cluster.hosts.map { $0.workers.map(\.pid) } == workerPids)
        #expect(cluster.hosts.allSatisfy { $0.workers.allSatisfy(\.isRunning) }, "no worker exited or was restarted")
    }

    @Test("100 concurrent first requests for one new film, spread over the three hosts, make one call per upstream step in all")
    func newFilmIsLookedUpOnceClusterWide() async throws {
        // A follower waits on a thread of its own, and a worker lets at most its threads less
        // the reserve wait on upstreams: 48 threads (36 may wait) hold a host's whole share of
        // the 100 even when one of its two workers accepts them all. Fewer answer 503 overloaded.
        let cluster = try await Cluster("multihost-flight", environment: ["MARQUEE_THREADS": "48"], database: true)
        defer { cluster.stop() }
        let film = TrailersFixtures.add(cluster.upstream, slug: "cluster-film-2024", imdbId: "tt7770001", tmdbId: 777_001)
        // Slow enough upstreams that the three hosts' lookups overlap.
        cluster.upstream.set(film.paths[0], .late(.milliseconds(300), then: .json(TrailersFixtures.viaplayDocument(imdbId: film.imdbId))))
        cluster.upstream.set(film.paths[1], .late(.milliseconds(300), then: .json(Array(#"{"movie_results":[{"id":777001}]}"#.utf8))))
        cluster.upstream.set(film.paths[2], .late(.milliseconds(300), then: .json(FakeUpstream.fixture("tmdb/movie-329865-videos.json"))))
        let route = TrailersFixtures.path(film.url)
        let statuses = await concurrently(100, width: 100) { index in
            await cluster.host(index % 3).status(route)
        }
        // Requests past a host's upstream slots follow the lookup in flight rather than shed.
        let summary = Dictionary(grouping: statuses, by: { $0 }).mapValues(\.count)
        #expect(statuses.allSatisfy { $0 == 200 }, "\(summary)")
        print("multi-host single flight: \(summary), upstream calls per step \(TrailersFixtures.calls(cluster.upstream, film.paths))")
        #expect(TrailersFixtures.calls(cluster.upstream, film.paths) == [1, 1, 1], "upstream calls per step")
        // Every host now answers from its own store: no more calls.
        for index in cluster.hosts.indices {
            #expect(await cluster.host(index).status(route) == 200)
        }
        #expect(TrailersFixtures.calls(cluster.upstream, film.paths) == [1, 1, 1])
    }

    @Test("the movies catalogue is fetched at most once per interval across the cluster, and every host serves it within the bound")
    func moviesFetchedOncePerIntervalClusterWide() async throws {
        let interval = 4
        let cluster = try await Cluster("multihost-movies", environment: ["MARQUEE_MOVIES_REFRESH_SECONDS": "\(interval)"], database: true)
        defer { cluster.stop() }
        let start = ContinuousClock.now
        cluster.upstream.resetCalls()
        var worstAge = 0.0
        while ContinuousClock.now < start + .seconds(interval * 4) {
            for index in cluster.hosts.indices {
                let answer = try await cluster.host(index).get("/api/v1/movies")
                #expect(answer.status == 200)
                if let refreshed = answer.json()?["refreshedAt"] as? String, let date = ISO8601DateFormatter().date(from: refreshed) {
                    worstAge = max(worstAge, Date().timeIntervalSince(date))
                }
            }
            try await Task.sleep(for: .milliseconds(250))
        }
        let elapsed = Double((ContinuousClock.now - start).components.seconds)
        let fetches = cluster.upstream.calls("/films")
        // At most once per interval in all, for three hosts, plus the one under way at the end.
        #expect(fetches <= Int(elapsed) / interval + 1, "\(fetches) fetches of /films in \(elapsed) s")
        #expect(fetches >= 2, "the catalogue was refreshed: \(fetches) fetches")
        #expect(worstAge < Double(interval) + 3, "the oldest catalogue a host served was \(worstAge) s old")
        print("multi-host movies: \(fetches) fetches of /films in \(elapsed) s over 3 hosts, oldest copy served \(worstAge) s")
    }

    @Test("one content event posted to host 2 is consumed once cluster-wide; host 3 then answers with zero upstream calls")
    func contentEventConsumedOnceClusterWide() async throws {
        let cluster = try await Cluster("multihost-events", database: true)
        defer { cluster.stop() }
        let postgres = try #require(cluster.postgres)
        let film = TrailersFixtures.add(cluster.upstream, slug: "event-film-2025", imdbId: "tt7770002", tmdbId: 777_002)
        let body = try JSONSerialization.data(withJSONObject: ["type": "new-content", "url": film.url])
        let posted = try await cluster.host(1).request("POST", "/api/v1/content-events", headers: TrailersFixtures.adminHeaders, body: body)
        #expect(posted.status == 202, "\(posted.text)")
        // Durable in the cluster's queue once answered 202 (unless a consumer was already done with it).
        let queuedRows = try postgres.psql("SELECT count(*) FROM content_events")
        let processedRows = try postgres.psql("SELECT value FROM content_event_counters WHERE name = 'processed'")
        #expect(queuedRows == "1" || processedRows == "1", "queued \(queuedRows), processed \(processedRows)")
        let consumed = try await eventually(within: .seconds(30)) {
            TrailersFixtures.calls(cluster.upstream, film.paths) == [1, 1, 1]
                && (try? postgres.psql("SELECT count(*) FROM content_events")) == "0"
        }
        #expect(consumed, "the event's lookup ran: \(TrailersFixtures.calls(cluster.upstream, film.paths))")
        // Give every host's consumer time for a few more rounds: nobody consumes it again.
        try await Task.sleep(for: .seconds(3))
        #expect(TrailersFixtures.calls(cluster.upstream, film.paths) == [1, 1, 1])
        // Completing an event deletes its row only while the completing consumer holds its claim,
        // and counts it in the same statement: one completion, cluster-wide.
        #expect(try postgres.psql("SELECT string_agg(name || '=' || value, ',' ORDER BY name) FROM content_event_counters")
                == "accepted=1,duplicates=0,processed=1")
        let holder = try postgres.psql("SELECT owner FROM cluster_leases WHERE name = '\(TrailerKeys.consumerLease)'")
        let holderPid = Int32(holder.split(separator: "@").first ?? "")
        let consumingHosts = cluster.hosts.indices.filter { index in holderPid.map { cluster.network.pids(ofHost: index).contains($0) } ?? false }
        #expect(consumingHosts.count == 1, "one consumer cluster-wide: \(holder)")
        let answer = try await cluster.host(2).get(TrailersFixtures.path(film.url))
        #expect(answer.status == 200, "\(answer.text)")
        #expect(answer.text.contains(TrailersFixtures.firstTrailer))
        #expect(TrailersFixtures.calls(cluster.upstream, film.paths) == [1, 1, 1], "host 3 answered from the cluster's answers, with no upstream call")
        print("multi-host events: posted to host 2, consumed by host \(consumingHosts.map { $0 + 1 }), served by host 3 with no upstream call")
    }

    @Test("the host holding a cluster-wide role dies: another host takes the role within 2 × the lease time")
    func roleTakeoverAfterHostDeath() async throws {
        let cluster = try await Cluster("multihost-roles", database: true)
        defer { cluster.stop() }
        let postgres = try #require(cluster.postgres)
        let role = TrailerKeys.refresherLease
        let ttl = PoolLease.clusterLeaseTTL
        func holder() -> String? {
            let owner = try? postgres.psql("SELECT owner FROM cluster_leases WHERE name = '\(role)' AND expires_at > clock_timestamp()")
            return owner?.isEmpty == false ? owner : nil
        }
        var first: String?
        #expect(try await eventually(within: .seconds(20)) { first = holder(); return first != nil }, "some host took \(role)")
        let owner = try #require(first)
        let pid = try #require(Int32(owner.split(separator: "@").first ?? ""))
        let host = try #require(cluster.hosts.indices.first { cluster.network.pids(ofHost: $0).contains(pid) }, "\(owner) runs on no host")

        // Exactly one holder cluster-wide, however many workers and hosts claim it every second.
        let holders = try postgres.psql("SELECT count(*) FROM cluster_leases WHERE name = '\(role)'")
        #expect(holders == "1")

        let killedAt = ContinuousClock.now
        cluster.killHost(host)
        var next: String?
        let tookOver = try await eventually(within: ttl * 3) {
            next = holder()
            return next != nil && next != owner
        }
        let takeover = ContinuousClock.now - killedAt
        #expect(tookOver, "no host took \(role) over from the dead host 1")
        let successor = try #require(next)
        let successorPid = try #require(Int32(successor.split(separator: "@").first ?? ""))
        #expect(cluster.hosts.indices.contains { $0 != host && cluster.network.pids(ofHost: $0).contains(successorPid) })
        #expect(takeover <= ttl * 2, "took \(takeover) with a lease of \(ttl)")
        print("multi-host roles: \(role) passed from host \(host + 1) to \(successor) \(takeover) after the kill (lease \(ttl), bound \(ttl * 2))")
    }

    @Test("visits read through three hosts add up in the database: each host moves its own outbox, each visit once")
    func visitsAddUp() async throws {
        let cluster = try await Cluster("multihost-visits", database: true)
        defer { cluster.stop() }
        let postgres = try #require(cluster.postgres)
        #expect(try await cluster.host(0).request("PUT", "/api/v1/videos/12345", headers: Stack.adminHeaders,
                                                  body: try VideoFixtures.data("video-12345.json")).status == 201)
        for index in cluster.hosts.indices {
            for read in 0..<(10 * (index + 1)) {
                let answer = try await cluster.host(index).get("/video/12345", headers: ["User-Agent": "host\(index + 1)/\(read)"])
                #expect(answer.status == 200, "host \(index + 1): \(answer.text)")
            }
        }
        var count: Int?
        let counted = try await eventually(within: .seconds(30)) {
            count = try await cluster.host(2).get("/api/v1/videos/12345/visits?limit=100", headers: Stack.adminHeaders).json()?["count"] as? Int
            return count == 60
        }
        #expect(counted, "count \(count ?? -1)")
        #expect(try postgres.psql("SELECT count(*) FROM video_visits WHERE video_id = '12345'") == "60")
        #expect(try postgres.psql("SELECT count(*) FROM video_visit_movers") == "3", "one mover per host")
        let recent = try await cluster.host(0).get("/api/v1/videos/12345/visits?limit=100", headers: Stack.adminHeaders)
        let agents = ((recent.json()?["recent"] as? [[String: Any]]) ?? []).compactMap { $0["userAgent"] as? String }
        #expect(Set(agents.map { $0.prefix(5) }) == ["host1", "host2", "host3"], "every host reads the same visits")
    }
}

final class AcknowledgedIds: @unchecked Sendable {
    private let lock = NSLock()
    private var ids: Set<String> = []
    func add(_ id: String) { lock.withLock { _ = ids.insert(id) } }
    var all: Set<String> { lock.withLock { ids } }
    var count: Int { all.count }
}

final class SlowestAnswer: @unchecked Sendable {
    private let lock = NSLock()
    private var slowest: Duration = .zero
    func saw(_ duration: Duration) { lock.withLock { slowest = max(slowest, duration) } }
    var value: Duration { lock.withLock { slowest } }
}

extension HTTPClient {
    /// An admin request; `json` is serialised as the body.
    func admin(_ method: String, _ path: String, json: Any? = nil) async throws -> HTTPAnswer {
        try await request(method, path, headers: Stack.adminHeaders, body: json.map { try JSONSerialization.data(withJSONObject: $0) })
    }
}
