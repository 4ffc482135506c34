import Foundation

/// One film as the API and the page show it, with the people the join found for it.
struct Movie: Codable, Sendable, Equatable {
    struct Person: Codable, Sendable, Equatable {
        var id: String
        var name: String
        var gender: String
        var age: String
    }

    var id: String
    var title: String
    var originalTitle: String
    /// As the upstream gives it: a year ("1986").
    var releaseDate: String
    var director: String
    var producer: String
    /// Minutes.
    var runningTime: Int
    /// The Rotten Tomatoes score, 0–100.
    var rtScore: Int
    var people: [Person]

    /// The year that leads `releaseDate`; the catalogue refuses a film without one.
    var releaseYear: Int { Int(releaseDate.prefix(4)) ?? 0 }
}

/// The body of `GET /api/v1/movies`, encoded once per refresh. It is also the stored model
/// the page is rendered from again when the data turns stale.
struct MoviesDocument: Codable, Sendable, Equatable {
    /// When the upstream was asked for this data.
    var refreshedAt: Date
    var stale: Bool
    /// The first failed refresh since this data was loaded; nil while refreshes succeed.
    var staleSince: Date?
    var movies: [Movie]

    private enum CodingKeys: String, CodingKey {
        case refreshedAt, stale, staleSince, movies
    }

    init(refreshedAt: Date, stale: Bool, staleSince: Date?, movies: [Movie]) {
        self.refreshedAt = refreshedAt
        self.stale = stale
        self.staleSince = staleSince
        self.movies = movies
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        refreshedAt = try container.decode(Date.self, forKey: .refreshedAt)
        stale = try container.decode(Bool.self, forKey: .stale)
        staleSince = try container.decodeIfPresent(Date.self, forKey: .staleSince)
        movies = try container.decode([Movie].self, forKey: .movies)
    }

    /// `staleSince` is written as null rather than left out, so that clients see the field.
    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(refreshedAt, forKey: .refreshedAt)
        try container.encode(stale, forKey: .stale)
        if let staleSince {
            try container.encode(staleSince, forKey: .staleSince)
        } else {
            try container.encodeNil(forKey: .staleSince)
        }
        try container.encode(movies, forKey: .movies)
    }

    static func makeEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }

    static func makeDecoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}
