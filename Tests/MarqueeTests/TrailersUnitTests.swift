import Foundation
import LMDBStore
@testable import Marquee
import Testing

/// The pieces of the trailers feature that need no process: the URL allow-list, the stored
/// record, the TMDB requests and answers, the settings, the event batch and the embedded queue.
@Suite("Trailers units")
struct TrailersUnitTests {
    let policy = FilmURLPolicy()

    static let refused: [(url: String, reason: String)] = [
        ("http://content.viaplay.se/pc-se/film/arrival-2016", "only https"),
        ("https://content.viaplay.se.evil.com/pc-se/film/x", "not an allowed"),
        ("https://evil.com/pc-se/film/x", "not an allowed"),
        ("https://content.viaplay.se@evil.com/pc-se/film/x", "user information"),
        ("https://content.viaplay.se:8443/pc-se/film/x", "ports"),
        ("https://content.viaplay.se/pc-se/film/..%2f..%2fadmin", "percent-encoded"),
        ("https://content.viaplay.se/pc-se/serie/x", "film path"),
        ("https://127.0.0.1/pc-se/film/x", "IP literals"),
        ("", "required"),
        ("https://content.viaplay.se/pc-se/film/" + String(repeating: "a", count: 10_000), "longer than 2048"),
    ]

    @Test("the issue's ten refused URLs are refused, each with its reason", arguments: refused)
    func refusesTheIssueList(_ example: (url: String, reason: String)) {
        #expect {
            try FilmURL.parse(example.url, policy: policy)
        } throws: { error in
            (error as? InvalidFilmURL)?.reason.contains(example.reason) == true
        }
    }

    @Test("more hostile spellings are refused too", arguments: [
        "https://xcontent.viaplay.se/pc-se/film/x",
        "https://content.viaplay.se./pc-se/film/x",
        "https://content.viaplay.com/pc-se/film/x",
        "https://[::1]/pc-se/film/x",
        "https://2130706433/pc-se/film/x",
        "https://content.viaplay.se\\@evil.com/pc-se/film/x",
        "https://content.viaplay.se/pc-se/film/../../admin",
        "https://content.viaplay.se/pc-se/film/%2e%2e",
        "https://content.viaplay.se/pc-se/film/x/y",
        "https://content.viaplay.se/pc-se/film/",
        "https://content.viaplay.se/pc-se/film/Arrival-2016",
        "https://content.viaplay.se/pc-se/film/arrival 2016",
        "https://content.viaplay.se/pc-se/film/arrival_2016",
        "https://content.viaplay.se/pc-se/film/" + String(repeating: "a", count: 101),
        "https:/content.viaplay.se/pc-se/film/x",
        "ftp://content.viaplay.se/pc-se/film/x",
        "content.viaplay.se/pc-se/film/x",
        "https://content.viaplay.se",
        "https:///pc-se/film/x",
        "https://content.viaplay.se/pc-xx/film/x",
        "https://content.viaplay.se/pc-se/film/x\u{0}",
    ])
    func refusesHostileSpellings(_ url: String) {
        #expect(throws: InvalidFilmURL.self) { try FilmURL.parse(url, policy: policy) }
    }

    @Test("normalising lower-cases the host and drops query, fragment and a trailing slash")
    func normalises() throws {
        for spelling in [
            "https://content.viaplay.se/pc-se/film/arrival-2016",
            "HTTPS://Content.Viaplay.SE/pc-se/film/arrival-2016/",
            "https://content.viaplay.se/pc-se/film/arrival-2016?utm_source=x&a=b",
            "https://content.viaplay.se/pc-se/film/arrival-2016#top",
            "https://content.viaplay.se/pc-se/film/arrival-2016/?x=1#y",
        ] {
            let film = try FilmURL.parse(spelling, policy: policy)
            #expect(film.normalised == TrailersFixtures.arrival)
            #expect(film.digest == FilmURL.hexDigest(of: Array(TrailersFixtures.arrival.utf8)))
            #expect(film.host == "content.viaplay.se" && film.path == "/pc-se/film/arrival-2016")
        }
        let danish = try FilmURL.parse("https://content.viaplay.dk/pc-dk/film/x", policy: policy)
        #expect(danish.normalised == "https://content.viaplay.dk/pc-dk/film/x")
    }

    @Test("the fetched URL is rebuilt from the allowed origin, or the configured stand-in")
    func rebuildsTheFetchedURL() throws {
        let film = try FilmURL.parse("https://CONTENT.viaplay.no/pc-no/film/arrival-2016/?evil=http://x#frag", policy: policy)
        #expect(film.contentURL(viaplayBase: nil).absoluteString == "https://content.viaplay.no/pc-no/film/arrival-2016")
        #expect(film.contentURL(viaplayBase: "http://127.0.0.1:9000/viaplay").absoluteString
            == "http://127.0.0.1:9000/viaplay/pc-no/film/arrival-2016")
        #expect(TrailerKeys.answer(film).count == "trailers/answer/".count + 64)
    }

    @Test("hosts and path prefixes come from the settings")
    func configurableAllowList() throws {
        let reader = SettingsReader(environment: [
            "MARQUEE_TRAILERS_HOSTS": "content.viaplay.se, content.viaplay.pl",
            "MARQUEE_TRAILERS_PATH_PREFIXES": "/pc-pl/film/",
            "MARQUEE_TRAILERS_MAX_SLUG_LENGTH": "5",
        ])
        let settings = try TrailersSettings(reader, threads: 8)
        #expect(try FilmURL.parse("https://content.viaplay.pl/pc-pl/film/abc", policy: settings.policy).host == "content.viaplay.pl")
        #expect(throws: InvalidFilmURL.self) { try FilmURL.parse("https://content.viaplay.se/pc-se/film/abc", policy: settings.policy) }
        #expect(throws: InvalidFilmURL.self) { try FilmURL.parse("https://content.viaplay.pl/pc-pl/film/abcdef", policy: settings.policy) }
    }

    @Test("the memo of checked film URLs stays bounded, skips long queries, and a reload starts a new one")
    func filmURLMemo() throws {
        let configuration = TrailersConfiguration(try TrailersSettings(SettingsReader(environment: [:]), threads: 8))
        let memo = configuration.now.films
        let film = try FilmURL.parse("https://content.viaplay.se/pc-se/film/arrival-2016", policy: policy)
        for index in 0..<FilmURLMemo.capacity {
            memo.remember(film, for: "url=\(index)")
        }
        #expect(memo.count == FilmURLMemo.capacity)
        #expect(memo["url=0"] == film)
        memo.remember(film, for: "url=one-too-many")
        #expect(memo.count == 1, "a full memo starts again rather than growing")
        #expect(memo["url=one-too-many"] == film)
        memo.remember(film, for: "url=" + String(repeating: "a", count: FilmURLMemo.maxQueryLength))
        #expect(memo.count == 1, "a query over the length bound is not kept")

        configuration.apply(try TrailersSettings(SettingsReader(environment: ["MARQUEE_TRAILERS_HOSTS": "content.viaplay.dk"]), threads: 8))
        #expect(configuration.now.films["url=one-too-many"] == nil, "a URL checked against the old allow-list is checked again")
    }

    @Test("settings: defaults, and refusals that name the variable")
    func settings() throws {
        let defaults = try TrailersSettings(SettingsReader(environment: [:]), threads: 8)
        #expect(defaults.tmdbBase == "https://api.themoviedb.org")
        #expect(defaults.viaplayBase == nil)
        #expect(defaults.tmdbAuth == .none)
        #expect(defaults.maxUpstream == 4)
        #expect(defaults.reserveThreads == 2)
        #expect(defaults.maxWaiting == 6)
        let single = try TrailersSettings(SettingsReader(environment: [:]), threads: 1)
        #expect(single.reserveThreads == 0 && single.maxUpstream == 1 && single.maxWaiting == 1)
        #expect(defaults.lifetimes == .init(content: .seconds(604_800), find: .seconds(604_800), videos: .seconds(86_400), negative: .seconds(600)))
        #expect(defaults.refreshAge == .seconds(86_400))
        #expect(defaults.refreshRate == 5)
        #expect(defaults.answerLifetime == .seconds(86_400))

        let token = try TrailersSettings(SettingsReader(environment: ["MARQUEE_TMDB_TOKEN": "eyJ.abc.def"]), threads: 8)
        #expect(token.tmdbAuth == .bearer("eyJ.abc.def"))

        for (environment, variable) in [
            (["MARQUEE_TMDB_API_KEY": "abc", "MARQUEE_TMDB_TOKEN": "def"], "MARQUEE_TMDB_TOKEN"),
            (["MARQUEE_TRAILERS_MAX_UPSTREAM": "8"], "MARQUEE_TRAILERS_MAX_UPSTREAM"),
            (["MARQUEE_TRAILERS_MAX_UPSTREAM": "7"], "MARQUEE_TRAILERS_MAX_UPSTREAM"),
            (["MARQUEE_TRAILERS_RESERVE_THREADS": "0"], "MARQUEE_TRAILERS_RESERVE_THREADS"),
            (["MARQUEE_TRAILERS_RESERVE_THREADS": "8"], "MARQUEE_TRAILERS_RESERVE_THREADS"),
            (["MARQUEE_TRAILERS_HOSTS": "127.0.0.1"], "MARQUEE_TRAILERS_HOSTS"),
            (["MARQUEE_TRAILERS_PATH_PREFIXES": "/pc-se/film"], "MARQUEE_TRAILERS_PATH_PREFIXES"),
            (["MARQUEE_VIAPLAY_BASE_URL": "file:///etc"], "MARQUEE_VIAPLAY_BASE_URL"),
            (["MARQUEE_TRAILERS_VIDEOS_TTL": "0"], "MARQUEE_TRAILERS_VIDEOS_TTL"),
        ] {
            #expect {
                try TrailersSettings(SettingsReader(environment: environment), threads: 8)
            } throws: { error in
                (error as? SettingsError)?.variable == variable
            }
        }
    }

    @Test("TMDB requests carry the v3 key as api_key, or the v4 token as a Bearer header")
    func tmdbCredentials() {
        let keyed = TMDBAPI(base: "https://api.themoviedb.org", auth: .apiKey("k3y"))
        #expect(keyed.findURL(imdbId: "tt2543164").absoluteString
            == "https://api.themoviedb.org/3/find/tt2543164?external_source=imdb_id&api_key=k3y")
        #expect(keyed.videosURL(tmdbId: 329_865).absoluteString == "https://api.themoviedb.org/3/movie/329865/videos?api_key=k3y")
        #expect(keyed.headers.isEmpty)

        let bearer = TMDBAPI(base: "https://api.themoviedb.org", auth: .bearer("t0ken"))
        #expect(bearer.videosURL(tmdbId: 329_865).absoluteString == "https://api.themoviedb.org/3/movie/329865/videos")
        #expect(bearer.headers.first { $0.0 == "Authorization" }?.1 == "Bearer t0ken")
    }

    @Test("the chain reads the fixtures: IMDb id, TMDB id, and the trailers without the teaser")
    func readsTheFixtures() throws {
        #expect(try ViaplayContent.imdbId(in: FakeUpstream.fixture("viaplay/pc-se-film-arrival-2016.json")) == "tt2543164")
        #expect(try ViaplayContent.imdbId(in: Array(#"{"_embedded":{}}"#.utf8)) == nil)
        #expect(throws: UpstreamError.self) { try ViaplayContent.imdbId(in: Array("<html>".utf8)) }
        #expect(try TMDBAPI.tmdbId(inFind: FakeUpstream.fixture("tmdb/find-tt2543164.json")) == 329_865)
        #expect(try TMDBAPI.tmdbId(inFind: Array(#"{"movie_results":[]}"#.utf8)) == nil)
        let trailers = try TMDBAPI.trailers(inVideos: FakeUpstream.fixture("tmdb/movie-329865-videos.json"))
        #expect(trailers.map(\.key) == ["tFMo3UJ4B4g", "WH9F4WkvhRk"])
        #expect(trailers[0] == Trailer(key: "tFMo3UJ4B4g", name: "Arrival Trailer (2016) - Paramount Pictures",
                                       language: "en", country: "US", size: 1080))
        #expect(trailers[0].url == "https://www.youtube.com/watch?v=tFMo3UJ4B4g")
        #expect(throws: UpstreamError.self) { try TMDBAPI.trailers(inVideos: Array(#"{"results":"no"}"#.utf8)) }
    }

    @Test("a stored record answers all three shapes, and a stale serve only flips the flag")
    func recordShapes() throws {
        let trailers = try TMDBAPI.trailers(inVideos: FakeUpstream.fixture("tmdb/movie-329865-videos.json"))
        let record = try TrailerRecord.found(.init(url: TrailersFixtures.arrival, imdbId: "tt2543164", tmdbId: 329_865,
                                               trailers: trailers, updatedAt: "2024-01-01T00:00:00Z"))
        #expect(TrailerRecord(record.bytes)?.url == TrailersFixtures.arrival)

        let full = try #require(JSONSerialization.jsonObject(with: Data(record.response(.full).body)) as? [String: Any])
        #expect(full["url"] as? String == TrailersFixtures.arrival)
        #expect(full["tmdbId"] as? Int == 329_865)
        #expect(full["stale"] as? Bool == false)
        #expect(((full["trailers"] as? [[String: Any]])?.first?["key"]) as? String == "tFMo3UJ4B4g")

        let stale = try #require(JSONSerialization.jsonObject(with: Data(record.response(.full, stale: true).body)) as? [String: Any])
        #expect(stale["stale"] as? Bool == true)
        #expect(NSDictionary(dictionary: stale.filter { $0.key != "stale" }).isEqual(to: full.filter { $0.key != "stale" }))

        #expect(String(decoding: record.response(.firstTrailerURL).body, as: UTF8.self) == #"{"trailerUrl":"https://youtu.be/tFMo3UJ4B4g"}"#)
        #expect(String(decoding: record.response(.trailerURLs).body, as: UTF8.self)
            == #"["https://www.youtube.com/watch?v=tFMo3UJ4B4g","https://www.youtube.com/watch?v=WH9F4WkvhRk"]"#)

        let missing = TrailerRecord.notFound(url: TrailersFixtures.arrival, reason: "TMDB lists no YouTube trailer for this film")
        #expect(missing.status == 404)
        #expect(missing.url == TrailersFixtures.arrival)
        for shape in [TrailerShape.full, .firstTrailerURL, .trailerURLs] {
            #expect(missing.response(shape).status == 404)
        }
        #expect(TrailerRecord(Array("500\n{}".utf8)) == nil)
    }

    @Test("an event batch keeps its valid events and refuses the others one by one")
    func eventBatch() throws {
        func body(_ text: String) throws -> [String: JSONValue] { try JSONReader.object(Array(text.utf8)) }
        let arrival = TrailersFixtures.arrival
        let batch = try ContentEventBatch.parse(try body("""
            {"events": [
              {"type": "new-content", "url": "\(arrival)"},
              {"type": "new-content", "url": "https://evil.com/pc-se/film/x"},
              {"type": "removed-content", "url": "\(arrival)"},
              {"url": "\(arrival)"},
              "not an object",
              {"type": "new-content"},
              {"type": "new-content", "url": "https://content.viaplay.fi/pc-fi/film/x/"}
            ]}
            """), policy: policy)
        #expect(batch.accepted.map(\.index) == [0, 6])
        #expect(batch.accepted.map(\.film.normalised) == [TrailersFixtures.arrival, "https://content.viaplay.fi/pc-fi/film/x"])
        #expect(batch.refused.map(\.index) == [1, 2, 3, 4, 5])
        #expect(batch.refused.map(\.code) == ["invalid_url", "unsupported_type", "invalid_event", "invalid_event", "invalid_url"])

        let single = try ContentEventBatch.parse(try body(#"{"type": "new-content", "url": "\#(arrival)"}"#), policy: policy)
        #expect(single.accepted.count == 1 && single.refused.isEmpty)

        let tooMany = "[" + Array(repeating: #"{"type": "new-content"}"#, count: 501).joined(separator: ",") + "]"
        for text in [#"{"events": []}"#, #"{"events": "x"}"#, #"{"events": [], "url": "x"}"#, #"{"events": \#(tooMany)}"#] {
            let object = try body(text)
            #expect(throws: HTTPError.self) { try ContentEventBatch.parse(object, policy: policy) }
        }
    }

    @Test("the embedded queue's figures carry the age of its oldest waiting event, and none once it is parked")
    func queueFigures() throws {
        let directory = TestPaths.temporaryDirectory("event-figures")
        defer { try? FileManager.default.removeItem(at: directory) }
        let queue = LMDBContentEventQueue(store: try Store.open(StoreOptions(directory: directory.path, maxBytes: 64 << 20)))
        #expect(try queue.figures().oldestWaitingAge == nil)

        _ = try queue.enqueue([try FilmURL.parse(TrailersFixtures.arrival, policy: policy)])
        usleep(20_000)
        let waiting = try queue.figures()
        #expect(waiting.queued == 1)
        let age = try #require(waiting.oldestWaitingAge)
        #expect(age >= .milliseconds(20) && age < .seconds(60), "\(age)")

        let event = try #require(try queue.claimDue(limit: 64, claimFor: .seconds(10)).first)
        try queue.failed(event, error: "refused", maxAttempts: 1, backoff: .zero)
        let parked = try queue.figures()
        #expect(parked.queued == 0 && parked.parked == 1)
        #expect(parked.oldestWaitingAge == nil)
    }
}
