import Foundation

/// The two TMDB calls of the chain: the requests (with either kind of credential) and what is
/// read from the answers.
struct TMDBAPI: Sendable {
    let base: String
    let auth: TrailersSettings.TMDBAuth

    /// `GET /3/find/{imdbId}?external_source=imdb_id`.
    func findURL(imdbId: String) -> URL {
        url("/3/find/\(imdbId)", query: "external_source=imdb_id")
    }

    /// `GET /3/movie/{tmdbId}/videos`.
    func videosURL(tmdbId: Int) -> URL {
        url("/3/movie/\(tmdbId)/videos", query: nil)
    }

    var headers: [(String, String)] {
        if case .bearer(let token) = auth { return [("Authorization", "Bearer \(token)")] }
        return []
    }

    private func url(_ path: String, query: String?) -> URL {
        var parameters = query.map { [$0] } ?? []
        if case .apiKey(let key) = auth { parameters.append("api_key=\(key)") }
        return URL(string: base + path + (parameters.isEmpty ? "" : "?" + parameters.joined(separator: "&")))!
    }

    private struct FindAnswer: Decodable {
        struct Movie: Decodable {
            var id: Int
        }

        var movie_results: [Movie]?
    }

    /// `movie_results[0].id`, nil when TMDB found no film.
    static func tmdbId(inFind body: [UInt8]) throws(UpstreamError) -> Int? {
        do {
            let id = try JSONDecoder().decode(FindAnswer.self, from: Data(body)).movie_results?.first?.id
            return id.flatMap { $0 > 0 ? $0 : nil }
        } catch {
            throw .malformed("the TMDB find answer does not decode")
        }
    }

    private struct VideosAnswer: Decodable {
        struct Video: Decodable {
            var key: String?
            var name: String?
            var site: String?
            var type: String?
            var iso_639_1: String?
            var iso_3166_1: String?
            var size: Int?
        }

        var results: [Video]?
    }

    /// The YouTube trailers, in TMDB's order; teasers, clips and other sites are skipped.
    static func trailers(inVideos body: [UInt8]) throws(UpstreamError) -> [Trailer] {
        let answer: VideosAnswer
        do {
            answer = try JSONDecoder().decode(VideosAnswer.self, from: Data(body))
        } catch {
            throw .malformed("the TMDB videos answer does not decode")
        }
        return (answer.results ?? []).compactMap { video in
            guard video.site == "YouTube", video.type == "Trailer", let key = video.key, Trailer.isValidKey(key) else { return nil }
            return Trailer(key: key, name: video.name ?? "", language: video.iso_639_1, country: video.iso_3166_1, size: video.size)
        }
    }
}
