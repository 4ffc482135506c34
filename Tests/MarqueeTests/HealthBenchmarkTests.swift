import Foundation
import Testing

extension Benchmarks {
    /// Health through nginx against the C ceiling over kept connections and against the
    /// Hummingbird 2 peer behind the same nginx (opt-in: see `BenchRun`).
    @Suite("Health benchmark")
    struct HealthBenchmarkTests {
        @Test("health against the ceiling and the Hummingbird peer, at 64 and 1000 connections")
        func againstPeer() throws {
            let run = try BenchRun("/api/v1/health", label: "health")
            for connections in [64, 1000] {
                #expect(try run.peerRatio(connections: connections) >= 1.1, "marquee / Hummingbird at \(connections) connections")
            }
            #expect(try run.ratio(connections: 64) >= 0.85)
            #expect(try run.row("marquee", connections: 1000).p99Milliseconds <= 50)
            run.expectMarqueeClean()
        }
    }
}
