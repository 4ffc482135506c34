import Foundation
import Testing

/// Films for the fake upstream beyond arrival-2016, built from the real fixtures with other ids,
/// and the request paths of the trailer routes.
enum TrailersFixtures {
    static let arrival = "https://content.viaplay.se/pc-se/film/arrival-2016"
    static let arrivalPaths = ["/pc-se/film/arrival-2016", "/3/find/tt2543164", "/3/movie/329865/videos"]
    static let firstTrailer = "tFMo3UJ4B4g"

    /// The workers' environment pointing every upstream at `fake`.
    static func environment(_ fake: FakeUpstream, _ extra: [String: String] = [:]) -> [String: String] {
        [
            "MARQUEE_VIAPLAY_BASE_URL": fake.baseURL,
            "MARQUEE_TMDB_BASE_URL": fake.baseURL,
            "MARQUEE_TMDB_API_KEY": "0123456789abcdef0123456789abcdef",
        ].merging(extra) { _, new in new }
    }

    /// `route?url=<url, percent-encoded as a query value>`.
    static func path(_ url: String, route: String = "/api/v1/trailers") -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return route + "?url=" + url.addingPercentEncoding(withAllowedCharacters: allowed)!
    }

    struct Film {
        var url: String
        var imdbId: String
        /// The Viaplay, TMDB find and TMDB videos paths of its chain.
        var paths: [String]
    }

    static let arrivalFilm = Film(url: arrival, imdbId: "tt2543164", paths: arrivalPaths)

    /// Serves a film `slug` whose chain goes through `imdbId` and `tmdbId` to arrival's videos.
    @discardableResult
    static func add(_ fake: FakeUpstream, slug: String, imdbId: String, tmdbId: Int) -> Film {
        let film = Film(url: "https://content.viaplay.se/pc-se/film/\(slug)", imdbId: imdbId,
                        paths: ["/pc-se/film/\(slug)", "/3/find/\(imdbId)", "/3/movie/\(tmdbId)/videos"])
        fake.set(film.paths[0], .json(viaplayDocument(imdbId: imdbId)))
        fake.set(film.paths[1], .json(Array(#"{"movie_results":[{"id":\#(tmdbId)}]}"#.utf8)))
        fake.set(film.paths[2], .json(FakeUpstream.fixture("tmdb/movie-329865-videos.json")))
        return film
    }

    static func viaplayDocument(imdbId: String) -> [UInt8] {
        let text = String(decoding: FakeUpstream.fixture("viaplay/pc-se-film-arrival-2016.json"), as: UTF8.self)
        return Array(text.replacingOccurrences(of: "tt2543164", with: imdbId).utf8)
    }

    static func calls(_ fake: FakeUpstream, _ paths: [String]) -> [Int] {
        paths.map { fake.calls($0) }
    }

    /// The trailers feature's section of the status page of whichever worker answers.
    static func status(_ stack: Stack) async throws -> [String: Any] {
        let answer = try await stack.client.get("/api/v1/status")
        let features = answer.json()?["features"] as? [String: Any]
        return try #require(features?["trailers"] as? [String: Any])
    }

    static func events(_ status: [String: Any]) -> [String: Any] {
        status["events"] as? [String: Any] ?? [:]
    }

    static let adminHeaders = ["Authorization": "Bearer \(Stack.adminToken)", "Content-Type": "application/json"]

    static func post(_ stack: Stack, _ body: Any) async throws -> HTTPAnswer {
        try await stack.client.request("POST", "/api/v1/content-events", headers: adminHeaders,
                                       body: try JSONSerialization.data(withJSONObject: body))
    }
}
