import Foundation

/// Turns the Studio Ghibli API's `/films` and `/people` bodies into the sorted movie list.
///
/// The upstream data is not clean: a third of the films' `people` links dangle or point at the
/// placeholder `…/people/`, while each person's `films` list is right. So people are joined to
/// films through their own `films` list, matched on the film id (the last path segment; the
/// host in the data is an older domain). Anything that does not have the expected shape fails
/// the whole load, so that bad data never replaces good data; only a film without a title is
/// left out, and reported.
enum GhibliCatalogue {
    struct Loaded: Sendable, Equatable {
        var movies: [Movie]
        var people: Int
        /// Ids of the films left out because they have no title.
        var untitled: [String]
    }

    /// Deeper nesting than this is not a Ghibli answer; checked before parsing.
    static let maxDepth = 16

    static func load(films filmsBody: [UInt8], people peopleBody: [UInt8]) throws(UpstreamError) -> Loaded {
        let films = try decode([UpstreamFilm].self, filmsBody, what: "films")
        let people = try decode([UpstreamPerson].self, peopleBody, what: "people")
        guard !films.isEmpty else { throw .malformed("films: the list is empty") }
        guard !people.isEmpty else { throw .malformed("people: the list is empty") }

        var movies: [Movie] = []
        var untitled: [String] = []
        var index: [String: Int] = [:]
        for (position, film) in films.enumerated() {
            guard let title = film.title?.trimmingCharacters(in: .whitespacesAndNewlines), !title.isEmpty else {
                untitled.append(film.id)
                continue
            }
            guard index[film.id] == nil else { continue }
            guard film.releaseDate.prefix(4).allSatisfy(\.isASCIIDigit), film.releaseDate.count >= 4 else {
                throw .malformed("films[\(position)].release_date: '\(film.releaseDate)' does not start with a year")
            }
            index[film.id] = movies.count
            movies.append(Movie(
                id: film.id, title: title, originalTitle: film.originalTitle, releaseDate: film.releaseDate,
                director: film.director, producer: film.producer, runningTime: film.runningTime.value,
                rtScore: film.rtScore.value, people: []
            ))
        }
        guard !movies.isEmpty else { throw .malformed("films: no film has a title") }

        var seenPeople = Set<String>()
        for person in people where seenPeople.insert(person.id).inserted {
            var joined = Set<Int>()
            for link in person.films {
                guard let position = index[filmId(link)], joined.insert(position).inserted else { continue }
                movies[position].people.append(Movie.Person(id: person.id, name: person.name, gender: person.gender, age: person.age.value))
            }
        }
        for position in movies.indices {
            movies[position].people.sort { ($0.name.lowercased(), $0.id) < ($1.name.lowercased(), $1.id) }
        }
        movies.sort { ($0.releaseYear, $0.title.lowercased(), $0.id) < ($1.releaseYear, $1.title.lowercased(), $1.id) }
        return Loaded(movies: movies, people: seenPeople.count, untitled: untitled)
    }

    /// The last path segment of a film link, whatever its host; "" for a placeholder like `…/films/`.
    static func filmId(_ link: String) -> String {
        let path = link.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        return String(path.split(separator: "/", omittingEmptySubsequences: false).last ?? "")
    }

    private static func decode<T: Decodable>(_ type: T.Type, _ body: [UInt8], what: String) throws(UpstreamError) -> T {
        guard !body.isEmpty else { throw .malformed("\(what): the body is empty") }
        guard JSONBody.nestingDepth(body) <= maxDepth else { throw .malformed("\(what): nested deeper than \(maxDepth) levels") }
        do {
            return try JSONDecoder().decode(type, from: Data(body))
        } catch let error as DecodingError {
            throw .malformed("\(what)\(describe(error))")
        } catch {
            throw .malformed("\(what): \(error)")
        }
    }

    /// `[3].rt_score: expected …` rather than DecodingError's debug dump.
    private static func describe(_ error: DecodingError) -> String {
        func path(_ codingPath: [any CodingKey]) -> String {
            codingPath.map { key in key.intValue.map { "[\($0)]" } ?? ".\(key.stringValue)" }.joined()
        }
        switch error {
        case .typeMismatch(let type, let context):
            return context.codingPath.isEmpty ? ": expected a JSON list" : "\(path(context.codingPath)): expected \(type)"
        case .valueNotFound(_, let context):
            return "\(path(context.codingPath)): is null"
        case .keyNotFound(let key, let context):
            return "\(path(context.codingPath + [key])): is missing"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? ": not valid JSON" : "\(path(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return ": \(error)"
        }
    }
}

/// One element of `/films`, as far as the catalogue reads it.
private struct UpstreamFilm: Decodable {
    var id: String
    var title: String?
    var originalTitle: String
    var releaseDate: String
    var director: String
    var producer: String
    var runningTime: WholeNumber
    var rtScore: WholeNumber

    enum CodingKeys: String, CodingKey {
        case id, title, director, producer
        case originalTitle = "original_title"
        case releaseDate = "release_date"
        case runningTime = "running_time"
        case rtScore = "rt_score"
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(NonEmpty.self, forKey: .id).value
        title = try container.decodeIfPresent(String.self, forKey: .title)
        originalTitle = try container.decode(String.self, forKey: .originalTitle)
        releaseDate = try container.decode(String.self, forKey: .releaseDate)
        director = try container.decode(String.self, forKey: .director)
        producer = try container.decode(String.self, forKey: .producer)
        runningTime = try container.decode(WholeNumber.self, forKey: .runningTime)
        rtScore = try container.decode(WholeNumber.self, forKey: .rtScore)
    }
}

/// One element of `/people`, as far as the catalogue reads it.
private struct UpstreamPerson: Decodable {
    var id: String
    var name: String
    var gender: String
    var age: Text
    var films: [String]

    enum CodingKeys: String, CodingKey {
        case id, name, gender, age, films
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(NonEmpty.self, forKey: .id).value
        name = try container.decode(NonEmpty.self, forKey: .name).value
        gender = try container.decode(String.self, forKey: .gender)
        age = try container.decode(Text.self, forKey: .age)
        films = try container.decode([String].self, forKey: .films)
    }
}

/// A string with something in it.
private struct NonEmpty: Decodable {
    var value: String

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        value = try container.decode(String.self)
        guard !value.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "is empty")
        }
    }
}

/// The API sends numbers as strings ("124"); a plain JSON number is taken as well.
private struct WholeNumber: Decodable {
    var value: Int

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(Int.self) {
            value = number
        } else if let text = try? container.decode(String.self), let number = Int(text.trimmingCharacters(in: .whitespaces)) {
            value = number
        } else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "expected a whole number")
        }
        guard value >= 0 else { throw DecodingError.dataCorruptedError(in: container, debugDescription: "expected a whole number, got \(value)") }
    }
}

/// Ages are free text ("12", "late teens", "NA"); a plain JSON number is taken as well.
private struct Text: Decodable {
    var value: String

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            value = text
        } else if let number = try? container.decode(Int.self) {
            value = String(number)
        } else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "expected text or a number")
        }
    }
}

private extension Character {
    var isASCIIDigit: Bool { isASCII && isWholeNumber }
}
