import Foundation
import Testing

/// Throughput of the cached trailer route, opt-in (MARQUEE_BENCH=1): it takes about a minute
/// each and wants the release build. The fake upstream stands in for Viaplay and TMDB.
///
///     swift build -c release
///     MARQUEE_BENCH=1 MARQUEE_TEST_BIN_DIR=$(swift build -c release --show-bin-path) \
///       swift test --filter TrailersBenchmark
@Suite("Trailers benchmark", .serialized, .enabled(if: ProcessInfo.processInfo.environment["MARQUEE_BENCH"] == "1"))
struct TrailersBenchmarkTests {
    static let duration = ProcessInfo.processInfo.environment["MARQUEE_BENCH_DURATION"] ?? "10s"
    /// The workers' log level may be chosen for the run (MARQUEE_LOG_LEVEL=warning drops the
    /// per-request line).
    static let passedThrough = ProcessInfo.processInfo.environment.filter { $0.key == "MARQUEE_LOG_LEVEL" }

    @Test("a cached trailer hit through nginx against the C ceiling, by deploy/bench")
    func againstCeiling() async throws {
        let fake = try FakeUpstream()
        defer { fake.stop() }
        let scratch = TestPaths.temporaryDirectory("trailers-bench")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let route = TrailersFixtures.path(TrailersFixtures.arrival)
        // deploy/bench's one probe request before measuring is the miss that stores the answer.
        let bench = try ChildProcess(
            "deploy-bench", executable: "/bin/bash",
            arguments: [TestPaths.script("deploy/bench"), route, "--duration", Self.duration, "--port", "\(Self.benchPort())",
                        "--binary", TestPaths.marquee],
            environment: TrailersFixtures.environment(fake, Self.passedThrough), logDirectory: scratch
        )
        let status = bench.waitForExit(timeout: .seconds(600))
        let output = bench.log
        print(output)
        try #require(status == 0, "deploy/bench failed")
        #expect(TrailersFixtures.calls(fake, TrailersFixtures.arrivalPaths) == [1, 1, 1], "every measured request was a hit")
        let ratio = output.split(separator: "\n").last { $0.hasPrefix("ratio ") }.flatMap { Double($0.dropFirst("ratio ".count)) }
        #expect((ratio ?? 0) >= 0.85, "ratio to the C ceiling: \(ratio ?? 0)")
        let marqueeRows = output.split(separator: "\n").filter { $0.hasPrefix("marquee ") }
        for row in marqueeRows {
            let columns = row.split(separator: " ", omittingEmptySubsequences: true)
            #expect(columns.count == 7 && columns[5] == "0" && columns[6] == "0", "non-2xx or socket errors: \(row)")
        }
    }

    @Test("the cached route's throughput with TMDB hanging against TMDB healthy, in one run")
    func hangingAgainstHealthy() async throws {
        let fake = try FakeUpstream()
        defer { fake.stop() }
        let stack = try await Stack("trailers-bench-hang", workers: 2, environment: TrailersFixtures.environment(fake, [
            "MARQUEE_THREADS": "8",
        ].merging(Self.passedThrough) { _, new in new }))
        defer { stack.stop() }
        let cached = TrailersFixtures.path(TrailersFixtures.arrival)
        #expect(try await stack.client.get(cached).status == 200)
        let url = "http://127.0.0.1:\(stack.port)\(cached)"

        _ = try wrk(url, duration: "3s", in: stack.directory)
        let healthy = try wrk(url, duration: Self.duration, in: stack.directory)

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
        let hanging = try wrk(url, duration: Self.duration, in: stack.directory)
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

    /// deploy/bench listens on PORT and PORT+1; both below the ephemeral range, so that no
    /// client socket of the run can hold either.
    private static func benchPort() -> Int {
        func free(_ port: Int) -> Bool {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = UInt16(port).bigEndian
            return withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
        }
        while true {
            let port = Int.random(in: 20_000...29_998)
            if free(port) && free(port + 1) { return port }
        }
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
