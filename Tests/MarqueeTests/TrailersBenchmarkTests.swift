import Foundation
import Testing

extension Benchmarks {
    /// Throughput of the cached trailer route (opt-in: see `BenchRun`). The fake upstream stands in
    /// for Viaplay and TMDB.
    @Suite("Trailers benchmark")
    struct TrailersBenchmarkTests {
        @Test("a cached trailer hit through nginx against the C ceiling and the Hummingbird peer, by deploy/bench")
        func againstCeiling() async throws {
            let fake = try FakeUpstream()
            defer { fake.stop() }
            // deploy/bench's one probe request before measuring is the miss that stores the answer.
            let run = try BenchRun(TrailersFixtures.path(TrailersFixtures.arrival), environment: TrailersFixtures.environment(fake),
                                   label: "trailers")
            #expect(TrailersFixtures.calls(fake, TrailersFixtures.arrivalPaths) == [1, 1, 1], "every measured request was a hit")
            #expect(try run.ratio(connections: 64) >= 0.85)
            for connections in [64, 1000] {
                #expect(try run.peerRatio(connections: connections) >= 1.1,
                        "cached hit on marquee / health on Hummingbird at \(connections) connections")
            }
            #expect(try run.row("marquee", connections: 1000).p99Milliseconds <= 50)
            run.expectMarqueeClean()
        }

        @Test("the cached route's throughput with TMDB hanging against TMDB healthy, in one run")
        func hangingAgainstHealthy() async throws {
            let fake = try FakeUpstream()
            defer { fake.stop() }
            let stack = try await Stack("trailers-bench-hang", workers: 2, environment: TrailersFixtures.environment(fake, [
                "MARQUEE_THREADS": "8",
            ].merging(BenchRun.passedThrough) { _, new in new }))
            defer { stack.stop() }
            let cached = TrailersFixtures.path(TrailersFixtures.arrival)
            #expect(try await stack.client.get(cached).status == 200)
            let url = "http://127.0.0.1:\(stack.port)\(cached)"

            _ = try wrk(url, duration: "3s", in: stack.directory)
            let healthy = try wrk(url, duration: BenchRun.duration, in: stack.directory)

            // Sixteen clients keep asking for films whose TMDB lookup hangs, each waiting as told
            // by Retry-After when shed, while the cached route is measured again.
            let films = (1...16).map { TrailersFixtures.add(fake, slug: "bench-hang-\($0)", imdbId: "tt00009\(String(format: "%02d", $0))", tmdbId: 900 + $0) }
            for film in films { fake.set(film.paths[1], .hang) }
            let outcomes = ProbeLog()
            let lookups = films.map { film in
                Task {
                    while !outcomes.isStopped {
                        let answer = try? await stack.client.request("GET", TrailersFixtures.path(film.url), timeout: 10)
                        outcomes.record(status: answer?.status ?? 0, latency: .zero)
                        if answer?.status == 503 { try? await Task.sleep(for: .seconds(1)) }
                    }
                }
            }
            try await Task.sleep(for: .seconds(1))
            let hanging = try wrk(url, duration: BenchRun.duration, in: stack.directory)
            outcomes.stop()
            for task in lookups { await task.value }

            let ratio = hanging.requestsPerSecond / healthy.requestsPerSecond
            print("""
                trailers bench: cached route, TMDB healthy \(healthy.requestsPerSecond) req/s, \
                TMDB hanging \(hanging.requestsPerSecond) req/s, ratio \(String(format: "%.3f", ratio)); \
                hanging lookups answered meanwhile: \(outcomes.snapshot())
                """)
            #expect(healthy.non2xx == 0 && hanging.non2xx == 0)
            #expect(fake.calls(films[0].paths[1]) > 0, "the hanging lookups reached TMDB")
            #expect(ratio >= 0.8, "cached throughput with TMDB hanging / healthy: \(ratio)")
        }

        private struct WrkResult {
            var requestsPerSecond: Double
            var non2xx: Int
        }

        private func wrk(_ url: String, duration: String, in directory: URL) throws -> WrkResult {
            let run = try ChildProcess("wrk-\(UUID().uuidString.prefix(6))", executable: "/usr/bin/wrk",
                                       arguments: ["-t2", "-c64", "-d\(duration)", "--timeout", "5s", url], logDirectory: directory)
            try #require(run.waitForExit(timeout: .seconds(300)) == 0, "wrk failed: \(run.log)")
            let lines = run.log.split(separator: "\n")
            let rate = lines.first { $0.contains("Requests/sec:") }.flatMap { Double($0.split(separator: " ").last ?? "") }
            let non2xx = lines.first { $0.contains("Non-2xx") }.flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
            return WrkResult(requestsPerSecond: try #require(rate, "no rate in: \(run.log)"), non2xx: non2xx)
        }
    }
}
