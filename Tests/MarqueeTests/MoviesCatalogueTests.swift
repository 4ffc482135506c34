import Foundation
@testable import Marquee
import Testing

/// The join, the checks on upstream data, the page's escaping and markup, and the caching
/// arithmetic, without processes: each rule of the movies issue on its own.
@Suite("Movies catalogue")
struct MoviesCatalogueTests {
    static var data: [String: [[String: Any]]] { FakeUpstream.ghibliData() }
    static let films = FakeUpstream.encode(data["films"]!)
    static let people = FakeUpstream.encode(data["people"]!)

    static func load(films: [[String: Any]]? = nil, people: [[String: Any]]? = nil) throws -> GhibliCatalogue.Loaded {
        try GhibliCatalogue.load(films: films.map(FakeUpstream.encode) ?? Self.films, people: people.map(FakeUpstream.encode) ?? Self.people)
    }

    static func film(_ movies: [Movie], titled title: String) -> Movie? {
        movies.first { $0.title == title }
    }

    @Test("the real data: 22 films, each person under every film of their own list, the host ignored")
    func joinsTheRealData() throws {
        let loaded = try Self.load()
        #expect(loaded.movies.count == 22)
        #expect(loaded.people == 57)
        #expect(loaded.untitled.isEmpty)
        let spirited = try #require(Self.film(loaded.movies, titled: "Spirited Away"))
        #expect(spirited.people.map(\.name).contains("Haku"))
        #expect(spirited.originalTitle == "千と千尋の神隠し")
        #expect(spirited.releaseDate == "2001")
        #expect(spirited.director == "Hayao Miyazaki")
        #expect(spirited.runningTime == 124)
        #expect(spirited.rtScore == 97)
        let haku = try #require(spirited.people.first { $0.name == "Haku" })
        #expect(haku == Movie.Person(id: "267649ac-fb1b-11eb-9a03-0242ac130003", name: "Haku", gender: "Male", age: "12"))
        // The Baron and Muta are listed in The Cat Returns and in Whisper of the Heart.
        for title in ["The Cat Returns", "Whisper of the Heart"] {
            let names = try #require(Self.film(loaded.movies, titled: title)).people.map(\.name)
            #expect(names.contains("Baron Humbert von Gikkingen"), "\(title)")
            #expect(names.contains("Renaldo Moon aka Moon aka Muta"), "\(title)")
        }
        // Every person of /people appears under exactly the films of their own list.
        let appearances = loaded.movies.reduce(0) { $0 + $1.people.count }
        let listed = Self.data["people"]!.reduce(0) { $0 + ($1["films"] as! [String]).count }
        #expect(appearances == listed)
    }

    @Test("films are sorted by release year, then title")
    func sortsByYearThenTitle() throws {
        let movies = try Self.load().movies
        let keys = movies.map { ($0.releaseYear, $0.title.lowercased()) }
        #expect(zip(keys, keys.dropFirst()).allSatisfy { $0 <= $1 })
        #expect(movies.first?.title == "Castle in the Sky")
        #expect(movies.last?.title == "Earwig and the Witch")
        let index = { (title: String) in movies.firstIndex { $0.title == title }! }
        #expect(index("The Tale of the Princess Kaguya") < index("The Wind Rises"))
        #expect(index("Grave of the Fireflies") < index("My Neighbor Totoro"))
    }

    @Test("duplicate film links are dropped, unknown ids and placeholders ignored, any host matches")
    func linksAreMatchedById() throws {
        var people = Self.data["people"]!
        let spiritedId = "dc2e6bd1-8156-4886-adff-b39e6043af0c"
        people[0]["films"] = [
            "https://ghibliapi.herokuapp.com/films/\(spiritedId)",
            "https://ghibliapi.vercel.app/films/\(spiritedId)",
            "https://elsewhere.example/films/\(spiritedId)?lang=en",
            "https://ghibliapi.herokuapp.com/films/00000000-0000-0000-0000-000000000000",
            "https://ghibliapi.herokuapp.com/films/",
        ]
        people.append(people[0])
        let spirited = try #require(Self.film(try Self.load(people: people).movies, titled: "Spirited Away"))
        #expect(spirited.people.filter { $0.name == "Haku" }.count == 1)
        #expect(GhibliCatalogue.filmId("https://x.example/films/abc") == "abc")
        #expect(GhibliCatalogue.filmId("https://x.example/films/") == "")
    }

    @Test("a film without a title is left out and reported; the others load")
    func untitledFilmIsSkipped() throws {
        var films = Self.data["films"]!
        films[0].removeValue(forKey: "title")
        films[1]["title"] = "  "
        let loaded = try Self.load(films: films)
        #expect(loaded.movies.count == 20)
        #expect(loaded.untitled == [films[0]["id"] as! String, films[1]["id"] as! String])
    }

    @Test("bad upstream data fails the whole load", arguments: [
        ("not JSON", Array("<html>oops</html>".utf8), nil),
        ("an object, not a list", Array(#"{"films":[]}"#.utf8), nil),
        ("an empty list", Array("[]".utf8), nil),
        ("an empty body", [UInt8](), nil),
        ("truncated", Array(MoviesCatalogueTests.films.prefix(500)), nil),
        ("nested too deep", Array((String(repeating: "[", count: 40) + String(repeating: "]", count: 40)).utf8), nil),
    ] as [(String, [UInt8], String?)])
    func badBodies(label: String, body: [UInt8], _: String?) {
        #expect(throws: UpstreamError.self, "\(label)") { try GhibliCatalogue.load(films: body, people: Self.people) }
        #expect(throws: UpstreamError.self, "\(label)") { try GhibliCatalogue.load(films: Self.films, people: body) }
    }

    @Test("missing fields and wrong types fail the load and name the field")
    func missingFieldsAndWrongTypes() throws {
        func failure(films: [[String: Any]]? = nil, people: [[String: Any]]? = nil) -> String {
            do {
                _ = try Self.load(films: films, people: people)
                return "loaded"
            } catch {
                return "\(error)"
            }
        }
        var films = Self.data["films"]!
        films[3].removeValue(forKey: "director")
        #expect(failure(films: films).contains("[3].director: is missing"))
        films = Self.data["films"]!
        films[2]["rt_score"] = "ninety"
        #expect(failure(films: films).contains("[2].rt_score"))
        films = Self.data["films"]!
        films[2]["title"] = 42
        #expect(failure(films: films).contains("[2].title"))
        films = Self.data["films"]!
        films[5]["release_date"] = "soon"
        #expect(failure(films: films).contains("release_date"))
        films = Self.data["films"]!
        films[4]["id"] = NSNull()
        #expect(failure(films: films).contains("[4].id"))
        var people = Self.data["people"]!
        people[0]["films"] = "https://ghibliapi.herokuapp.com/films/x"
        #expect(failure(people: people).contains("[0].films"))
        people = Self.data["people"]!
        people[1].removeValue(forKey: "name")
        #expect(failure(people: people).contains("[1].name: is missing"))
        films = Self.data["films"]!.map { var film = $0; film.removeValue(forKey: "title"); return film }
        #expect(failure(films: films).contains("no film has a title"))
    }

    @Test("numbers sent as JSON numbers are taken as well as the API's strings")
    func numbersEitherWay() throws {
        var films = Self.data["films"]!
        films[0]["rt_score"] = 95
        films[0]["running_time"] = 124
        var people = Self.data["people"]!
        people[0]["age"] = 12
        let loaded = try Self.load(films: films, people: people)
        #expect(Self.film(loaded.movies, titled: "Castle in the Sky")?.rtScore == 95)
        #expect(Self.film(loaded.movies, titled: "Spirited Away")?.people.first { $0.name == "Haku" }?.age == "12")
    }

    // MARK: Page

    static func document(_ movies: [Movie], stale: Bool = false) -> MoviesDocument {
        MoviesDocument(refreshedAt: Date(timeIntervalSince1970: 1_700_000_000), stale: stale,
                       staleSince: stale ? Date(timeIntervalSince1970: 1_700_000_100) : nil, movies: movies)
    }

    @Test("the page: HTML5 with a charset, every film with its facts and people, Japanese titles as UTF-8")
    func pageMarkup() throws {
        let movies = try Self.load().movies
        let html = String(decoding: MoviesPage().render(Self.document(movies)), as: UTF8.self)
        #expect(html.hasPrefix("<!DOCTYPE html>\n<html lang=\"en\">"))
        #expect(html.contains("<meta charset=\"utf-8\">"))
        #expect(html.hasSuffix("</html>\n"))
        #expect(!html.contains("{{"))
        #expect(html.contains("Data refreshed <time datetime=\"2023-11-14T22:13:20Z\">2023-11-14 22:13:20 UTC</time>"))
        #expect(!html.contains("Stale since"))
        let rows = MoviesPageReader.rows(html)
        #expect(rows.count == 22)
        let spirited = try #require(rows["Spirited Away"])
        #expect(spirited.contains("千と千尋の神隠し"))
        #expect(spirited.contains("<td>2001</td>"))
        #expect(spirited.contains("<td>Hayao Miyazaki</td>"))
        #expect(spirited.contains("<td>97%</td>"))
        #expect(spirited.contains("<li>Haku</li>"))
        #expect(spirited.contains("<li>Chihiro Ogino</li>"))
        #expect(try #require(rows["Grave of the Fireflies"]).contains("—"))
        // Tags balance: every element opened in the body is closed, in order.
        #expect(MoviesPageReader.unbalancedTags(html).isEmpty)
    }

    @Test("the stale page says since when")
    func stalePage() throws {
        let html = String(decoding: MoviesPage().render(Self.document(try Self.load().movies, stale: true)), as: UTF8.self)
        #expect(html.contains("Stale since <time datetime=\"2023-11-14T22:15:00Z\">2023-11-14 22:15:00 UTC</time>"))
        #expect(MoviesPageReader.unbalancedTags(html).isEmpty)
    }

    @Test("every upstream string is escaped: tags, quotes, ampersands, and a quote hidden behind a combining mark")
    func escaping() throws {
        var films = Self.data["films"]!
        films[0]["title"] = "<script>alert(1)</script>"
        films[0]["id"] = "x\"\u{301} onmouseover=\"alert(2)"
        films[1]["director"] = "Tom & Jerry's \"best\" <b>"
        var people = Self.data["people"]!
        people[0]["name"] = "<img src=x onerror=alert(3)>"
        let html = String(decoding: MoviesPage().render(Self.document(try Self.load(films: films, people: people).movies)), as: UTF8.self)
        #expect(!html.contains("<script>"))
        #expect(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        #expect(!html.contains("onmouseover=\"alert"))
        #expect(html.contains("id=\"film-x&quot;\u{301} onmouseover=&quot;alert(2)\""))
        #expect(html.contains("Tom &amp; Jerry&#39;s &quot;best&quot; &lt;b&gt;"))
        #expect(!html.contains("<img"))
        #expect(StrictHTMLContentType().escapeText("a\"\u{301}<\u{338}&") == "a&quot;\u{301}&lt;\u{338}&amp;")
    }

    @Test("the JSON: the issue's fields, people with id, name, gender and age, staleSince null when fresh")
    func jsonShape() throws {
        let movies = try Self.load().movies
        let body = try MoviesDocument.makeEncoder().encode(Self.document(movies))
        let object = try #require(try JSONSerialization.jsonObject(with: body) as? [String: Any])
        #expect(object["refreshedAt"] as? String == "2023-11-14T22:13:20Z")
        #expect(object["stale"] as? Bool == false)
        #expect(object["staleSince"] is NSNull)
        let list = try #require(object["movies"] as? [[String: Any]])
        #expect(list.count == 22)
        #expect(Set(list[0].keys) == ["id", "title", "originalTitle", "releaseDate", "director", "producer", "runningTime", "rtScore", "people"])
        let person = try #require((list[0]["people"] as? [[String: Any]])?.first)
        #expect(Set(person.keys) == ["id", "name", "gender", "age"])
        let decoded = try MoviesDocument.makeDecoder().decode(MoviesDocument.self, from: body)
        #expect(decoded == Self.document(movies))
    }

    // MARK: Caching

    @Test("max-age never reaches past 60 s after the refresh, and is 0 for stale data")
    func maxAgeKeepsTheBound() {
        let refreshedAt: UInt64 = 1_700_000_000_000
        let freshness = MoviesFeature.freshness
        for ageMillis in stride(from: UInt64(0), through: 70_000, by: 250) {
            let maxAge = Representation.maxAge(refreshedAt: refreshedAt, now: refreshedAt + ageMillis, stale: false, freshness: freshness)
            #expect(maxAge >= 0)
            #expect(ageMillis + UInt64(maxAge) * 1000 <= 60_000 || maxAge == 0)
        }
        #expect(Representation.maxAge(refreshedAt: refreshedAt, now: refreshedAt, stale: false, freshness: freshness) == 60)
        #expect(Representation.maxAge(refreshedAt: refreshedAt, now: refreshedAt + 50_500, stale: false, freshness: freshness) == 9)
        #expect(Representation.maxAge(refreshedAt: refreshedAt, now: refreshedAt, stale: true, freshness: freshness) == 0)
    }

    @Test("the freshness bound holds for the default interval: one interval, one loop round and two upstream deadlines fit in 60 s")
    func defaultIntervalFitsTheBound() throws {
        let settings = try MoviesSettings(SettingsReader(environment: [:]))
        let worst = settings.refreshInterval + settings.loopInterval + UpstreamClient.Timeouts().total * 2
        #expect(worst <= MoviesFeature.freshness)
        let longest = try MoviesSettings(SettingsReader(environment: ["MARQUEE_MOVIES_REFRESH_SECONDS": "55"]))
        #expect(longest.refreshInterval + longest.loopInterval + .seconds(3) < MoviesFeature.freshness)
        #expect(throws: SettingsError.self) { try MoviesSettings(SettingsReader(environment: ["MARQUEE_MOVIES_REFRESH_SECONDS": "56"])) }
        #expect(throws: SettingsError.self) { try MoviesSettings(SettingsReader(environment: ["MARQUEE_GHIBLI_BASE_URL": "ftp://x"])) }
    }

    @Test("If-None-Match: exact, in a list, weak, or *")
    func ifNoneMatch() {
        let etag = "\"abc\""
        #expect(Representation.matches("\"abc\"", etag: etag))
        #expect(Representation.matches("\"x\", \"abc\"", etag: etag))
        #expect(Representation.matches("W/\"abc\"", etag: etag))
        #expect(Representation.matches("*", etag: etag))
        #expect(!Representation.matches("\"abcd\"", etag: etag))
        #expect(!Representation.matches("abc", etag: etag))
    }

    @Test("a stored representation reads back whole, and garbage reads as nothing")
    func representationRoundTrip() {
        let body = Array("<p>千と千尋</p>".utf8)
        let stored = Representation(body: body, refreshedAt: 1_700_000_000_123, stale: true)
        #expect(Representation.decode(stored.encoded()) == stored)
        #expect(stored.lastModified == "Tue, 14 Nov 2023 22:13:20 GMT")
        #expect(stored.etag.count == 34)
        #expect(Representation(body: body + [0], refreshedAt: 1, stale: false).etag != stored.etag)
        #expect(Representation.decode([]) == nil)
        #expect(Representation.decode([9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9]) == nil)
        #expect(Representation.decode(Array(stored.encoded().prefix(14))) == nil)
    }
}

/// Reads the movies page the way the tests need it.
enum MoviesPageReader {
    /// Each film row's markup by the film's title.
    static func rows(_ html: String) -> [String: String] {
        var rows: [String: String] = [:]
        for row in html.components(separatedBy: "<tr id=\"film-").dropFirst() {
            let markup = row.components(separatedBy: "</tr>")[0]
            guard let start = markup.range(of: "<cite>"), let end = markup.range(of: "</cite>") else { continue }
            rows[String(markup[start.upperBound..<end.lowerBound])] = markup
        }
        return rows
    }

    /// Elements opened and not closed, or closed out of order; void elements excepted.
    static func unbalancedTags(_ html: String) -> [String] {
        let void: Set<String> = ["meta", "link", "br", "img", "hr", "input"]
        var stack: [String] = []
        var problems: [String] = []
        var rest = html[...]
        while let open = rest.firstIndex(of: "<") {
            guard let close = rest[open...].firstIndex(of: ">") else { break }
            let tag = rest[rest.index(after: open)..<close]
            rest = rest[rest.index(after: close)...]
            if tag.hasPrefix("!") { continue }
            let name = String(tag.prefix { $0 != " " })
            if name.hasPrefix("/") {
                let closing = String(name.dropFirst())
                if stack.last == closing { stack.removeLast() } else { problems.append("</\(closing)> closes <\(stack.last ?? "nothing")>") }
            } else if !void.contains(name) {
                stack.append(name)
            }
        }
        return problems + stack.map { "<\($0)> not closed" }
    }
}
