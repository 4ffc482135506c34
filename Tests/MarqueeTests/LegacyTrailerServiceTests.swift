import Foundation
import Testing

/// The earlier trailer services' cases, replayed in order over HTTP through a real nginx and
/// real workers, with the fake upstream playing Viaplay and TMDB.
@Suite("LegacyTrailerService", .serialized)
struct LegacyTrailerServiceTests {
    static let html = "text/html; charset=utf-8"

    @Test("the first service, GET /api/trailer: its valid URL and the four it refuses")
    func firstService() async throws {
        let fake = try FakeUpstream()
        defer { fake.stop() }
        let stack = try await Stack("legacy-trailer-first", workers: 2, environment: TrailersFixtures.environment(fake))
        defer { stack.stop() }

        let valid = try await stack.client.get(TrailersFixtures.path(TrailersFixtures.arrival, route: "/api/trailer"))
        #expect(valid.status == 200)
        #expect(valid.text == #"{"trailerUrl":"https://youtu.be/tFMo3UJ4B4g"}"#)

        for url in [
            "http://content.viaplay.se/pc-se/film/arrival-2016",   // invalid protocol
            "https://content.play.se/pc-se/film/arrival-2016",     // invalid hostname
            "https://content.viaplay.se/pc-se/barn/arrival-2016",  // invalid base path
            "https://content.viaplay.se/pc-se/film/",              // missing movie resource
        ] {
            let refused = try await stack.client.get(TrailersFixtures.path(url, route: "/api/trailer"))
            #expect(refused.status == 400, "\(url)")
        }
        #expect(TrailersFixtures.calls(fake, TrailersFixtures.arrivalPaths) == [1, 1, 1])
    }

    @Test("the second service, GET /api/v1/trailer/: its list, then its texts for a missing, an invalid and an unanswerable url")
    func secondService() async throws {
        let fake = try FakeUpstream()
        defer { fake.stop() }
        let stack = try await Stack("legacy-trailer-second", workers: 2,
                                    environment: TrailersFixtures.environment(fake, ["MARQUEE_UPSTREAM_TIMEOUT": "1"]))
        defer { stack.stop() }

        let list = try await stack.client.get(TrailersFixtures.path(TrailersFixtures.arrival, route: "/api/v1/trailer/"))
        #expect(list.status == 200)
        #expect(list.text == #"["https://www.youtube.com/watch?v=tFMo3UJ4B4g","https://www.youtube.com/watch?v=WH9F4WkvhRk"]"#)

        for path in ["/api/v1/trailer/", "/api/v1/trailer/?url=", "/api/v1/trailer/?other=1"] {
            let missing = try await stack.client.get(path)
            #expect(missing.status == 400, "\(path)")
            #expect(missing.header("Content-Type") == Self.html, "\(path)")
            #expect(missing.text == "Missing 'url' parameter", "\(path)")
        }

        for url in ["https://evil.com/pc-se/film/x", "https://content.viaplay.se.evil.com/pc-se/film/x", "not a url", "%ZZ"] {
            let path = url == "%ZZ" ? "/api/v1/trailer/?url=%ZZ" : TrailersFixtures.path(url, route: "/api/v1/trailer/")
            let invalid = try await stack.client.get(path)
            #expect(invalid.status == 400, "\(url)")
            #expect(invalid.header("Content-Type") == Self.html, "\(url)")
            #expect(invalid.text == "Invalid 'url' parameter", "\(url)")
        }

        // TMDB failing, and TMDB hanging past the upstream timeout: both are its 500.
        let failing = TrailersFixtures.add(fake, slug: "failing", imdbId: "tt0000011", tmdbId: 11)
        fake.set(failing.paths[1], .status(500, []))
        let hanging = TrailersFixtures.add(fake, slug: "hanging", imdbId: "tt0000012", tmdbId: 12)
        fake.set(hanging.paths[1], .hang)
        for film in [failing, hanging] {
            let failed = try await stack.client.get(TrailersFixtures.path(film.url, route: "/api/v1/trailer/"))
            #expect(failed.status == 500, "\(film.url)")
            #expect(failed.header("Content-Type") == Self.html, "\(film.url)")
            #expect(failed.text == "Internal server error", "\(film.url)")
        }

        // The modern route keeps its JSON errors for the same requests.
        let modern = try await stack.client.get(TrailersFixtures.path(failing.url))
        #expect(modern.status == 502)
        #expect(modern.errorCode == "upstream_error")
        #expect(try await stack.client.get("/api/v1/trailers").errorCode == "invalid_url")
    }
}
