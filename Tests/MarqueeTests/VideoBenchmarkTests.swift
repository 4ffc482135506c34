import Foundation
import Testing

extension Benchmarks {
    /// Minting for the earlier service's 2-source body (opt-in: see `BenchRun`), each source
    /// checked against the catalogue, round-robin over three hmac-sha256 CDNs through the shared counter.
    @Suite("Video benchmark")
    struct VideoBenchmarkTests {
        @Test("minting at 1000 connections against the C ceiling")
        func minting() throws {
            let directory = TestPaths.temporaryDirectory("video-bench")
            defer { try? FileManager.default.removeItem(at: directory) }
            let cdns = directory.appendingPathComponent("cdns.json")
            let list = (0..<3).map { VideoFixtures.hmacCDN(name: "cdn\($0)", address: "https://cdn\($0).example.com",
                                                             keys: [(id: "k\($0)", active: true, retired: false)]) }
            try #"{"cdns": [\#(list.joined(separator: ","))]}"#.write(to: cdns, atomically: true, encoding: .utf8)
            // The body's sources are signed only as the catalogue's: video 12345 is imported first.
            let store = directory.appendingPathComponent("store")
            let importer = try ChildProcess("videos-import", executable: TestPaths.marquee,
                                            arguments: ["videos", "import", VideoFixtures.directory.appendingPathComponent("video-12345.json").path],
                                            environment: ["MARQUEE_STORE_DIR": store.path], logDirectory: directory)
            try #require(importer.waitForExit(timeout: .seconds(120)) == 0, "import failed: \(importer.log)")
            let body = VideoFixtures.directory.appendingPathComponent("token-request.json")
            let run = try BenchRun("/video/token", ["--body", body.path, "--store", store.path], environment: ["MARQUEE_CDNS_FILE": cdns.path],
                                   label: "video")
            let marquee = try run.row("marquee", connections: 1000)
            #expect(try run.ratio(connections: 1000) >= 0.7)
            #expect(marquee.p99Milliseconds <= 100)
            run.expectMarqueeClean()
        }
    }
}
