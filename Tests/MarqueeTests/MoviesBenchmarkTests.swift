import Foundation
import Testing

extension Benchmarks {
    /// The stored page and JSON against the C ceiling (opt-in: see `BenchRun`). The fake upstream
    /// serves the real data.json; deploy/bench's probe is the first load that fills the store.
    @Suite("Movies benchmark")
    struct MoviesBenchmarkTests {
        @Test("/movies/ through nginx against the C ceiling", arguments: [("/movies/", 0.7), ("/api/v1/movies", 0.8)])
        func againstCeiling(route: String, target: Double) async throws {
            let fake = try FakeUpstream()
            defer { fake.stop() }
            let run = try BenchRun(route, environment: ["MARQUEE_GHIBLI_BASE_URL": fake.baseURL], label: "movies")
            #expect(fake.calls("/films") <= 3, "a page load never fetched: \(fake.calls("/films")) fetches of /films")
            #expect(try run.ratio(connections: 64) >= target)
            run.expectMarqueeClean()
        }
    }
}
