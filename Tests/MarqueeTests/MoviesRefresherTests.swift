import Foundation
import LMDBStore
@testable import Marquee
import Synchronization
import Testing

/// The refresher in this process, against a real store and the fake upstream: single flight,
/// pacing, and bad data that never replaces good data.
@Suite("Movies refresher")
final class MoviesRefresherTests {
    let fake: FakeUpstream
    let directory: URL
    let services: Services
    let refresher: MoviesRefresher

    init() throws {
        fake = try FakeUpstream()
        directory = TestPaths.temporaryDirectory("movies-refresher")
        let settings = try Settings(SettingsReader(environment: [
            "MARQUEE_STORE_DIR": directory.appendingPathComponent("store").path,
            "MARQUEE_STORE_MAX_MB": "64",
            "MARQUEE_GHIBLI_BASE_URL": fake.baseURL,
            "MARQUEE_MOVIES_REFRESH_SECONDS": "1",
            "MARQUEE_UPSTREAM_TIMEOUT": "2",
            "MARQUEE_LOG_LEVEL": "error",
        ]))
        services = Services(store: try Store.open(settings.storeOptions), settings: settings)
        let movies = try MoviesSettings(settings.reader)
        refresher = MoviesRefresher(store: services.store, upstream: services.upstream, page: MoviesPage(),
                                    representations: RepresentationCache(store: services.store), settings: movies,
                                    logger: { [services] in services.logger })
    }

    deinit {
        fake.stop()
        services.upstream.shutdown()
        try? FileManager.default.removeItem(at: directory)
    }

    private func stored() throws -> (json: MoviesDocument, page: String, representation: Representation)? {
        guard let json = try services.store.get(MoviesRefresher.Keys.json).flatMap(Representation.decode),
              let page = try services.store.get(MoviesRefresher.Keys.page).flatMap(Representation.decode) else { return nil }
        let document = try MoviesDocument.makeDecoder().decode(MoviesDocument.self, from: Data(json.body))
        return (document, String(decoding: page.body, as: UTF8.self), json)
    }

    /// Moves the last attempt one interval back, so that the next round is due without a wait.
    private func makeDue() throws {
        try services.store.write(.state) { txn in
            var state = RefreshState.decode(try txn.get(MoviesRefresher.Keys.state))
            state.lastAttemptAt = state.lastAttemptAt.map { $0 - 1_000 }
            try txn.put(MoviesRefresher.Keys.state, state.encoded())
        }
    }

    @Test("100 simultaneous first loads on an empty store make one fetch of /films and one of /people")
    func firstLoadIsSingleFlight() throws {
        fake.set("/films", .late(.milliseconds(300), then: .json(MoviesCatalogueTests.films)))
        let outcomes = Mutex<[MoviesRefresher.FirstLoad]>([])
        let group = DispatchGroup()
        for _ in 0..<100 {
            group.enter()
            Thread { [refresher] in
                let outcome = refresher.awaitFirstLoad()
                outcomes.withLock { $0.append(outcome) }
                group.leave()
            }.start()
        }
        #expect(group.wait(timeout: .now() + 20) == .success)
        #expect(outcomes.withLock { $0 } == Array(repeating: .loaded, count: 100))
        #expect(fake.calls("/films") == 1)
        #expect(fake.calls("/people") == 1)
        #expect(try stored()?.json.movies.count == 22)
    }

    @Test("the leader refreshes at most once per interval")
    func pacing() throws {
        refresher.round()
        refresher.round()
        #expect(fake.calls("/films") == 1)
        guard case .notDue = try refresher.claim(asLeader: true) else {
            Issue.record("a claim within the interval was not refused")
            return
        }
        try makeDue()
        refresher.round()
        #expect(fake.calls("/films") == 2)
        #expect(refresher.state()?.succeeded == 2)
    }

    @Test("a failing upstream keeps the data, marks it stale once, counts the failures; a success clears it")
    func failureMarksStale() throws {
        refresher.round()
        let fresh = try #require(try stored())
        #expect(!fresh.json.stale)
        fake.set("/films", .status(500, Array("{}".utf8)))
        try makeDue()
        refresher.round()
        let stale = try #require(try stored())
        #expect(stale.json.stale)
        #expect(stale.json.movies == fresh.json.movies)
        #expect(stale.json.refreshedAt == fresh.json.refreshedAt)
        let staleSince = try #require(stale.json.staleSince)
        #expect(stale.page.contains("Stale since"))
        #expect(stale.representation.stale)
        #expect(stale.representation.refreshedAt == fresh.representation.refreshedAt)
        #expect(stale.representation.etag != fresh.representation.etag)
        try makeDue()
        refresher.round()
        let state = try #require(refresher.state())
        #expect(state.failed == 2)
        #expect(state.succeeded == 1)
        #expect(state.lastError?.contains("HTTP 500") == true)
        #expect(try stored()?.json.staleSince == staleSince, "stale since the first failure, not the last")

        fake.loadFixtures()
        try makeDue()
        refresher.round()
        let recovered = try #require(try stored())
        #expect(!recovered.json.stale)
        #expect(recovered.json.staleSince == nil)
        #expect(!recovered.page.contains("Stale since"))
        #expect(refresher.state()?.staleSince == nil)
    }

    @Test("malformed bodies, missing fields, wrong types, an empty list or 10 MB never replace good data")
    func badDataNeverReplacesGoodData() throws {
        refresher.round()
        let good = try #require(try stored()).json.movies
        var missing = MoviesCatalogueTests.data["films"]!
        missing[0].removeValue(forKey: "rt_score")
        var wrongType = MoviesCatalogueTests.data["films"]!
        wrongType[0]["people"] = 7
        wrongType[0]["director"] = ["Hayao", "Miyazaki"]
        let bad: [(String, FakeUpstream.Behaviour)] = [
            ("garbage", .json(Array("<html>500 Internal Server Error</html>".utf8))),
            ("missing field", .json(FakeUpstream.encode(missing))),
            ("wrong type", .json(FakeUpstream.encode(wrongType))),
            ("empty list", .json(Array("[]".utf8))),
            ("10 MB", .json(Array(repeating: UInt8(ascii: " "), count: 10 << 20))),
            ("not found", .status(404, Array("{}".utf8))),
        ]
        for (index, (label, behaviour)) in bad.enumerated() {
            fake.set("/films", behaviour)
            try makeDue()
            refresher.round()
            let now = try #require(try stored(), "\(label)")
            #expect(now.json.movies == good, "\(label)")
            #expect(now.json.stale, "\(label)")
            #expect(refresher.state()?.failed == index + 1, "\(label)")
        }
        fake.set("/films", .json(Array(repeating: UInt8(ascii: " "), count: 10 << 20)))
        try makeDue()
        refresher.round()
        #expect(refresher.state()?.lastError?.contains("more than \(MoviesRefresher.maxBodyBytes) bytes") == true)
    }

    @Test("an empty store with a failing upstream answers unavailable, and retries only when due")
    func emptyStoreUnavailable() throws {
        fake.set("/films", .status(503, []))
        #expect(refresher.awaitFirstLoad() == .unavailable(retryAfterSeconds: 1))
        let calls = fake.calls("/films")
        #expect(calls == 2, "one call and the client's one retry")
        guard case .unavailable = refresher.awaitFirstLoad() else {
            Issue.record("a second first load within the retry time was not refused")
            return
        }
        #expect(fake.calls("/films") == calls)
        #expect(refresher.state()?.failed == 1)
        #expect(refresher.state()?.staleSince == nil, "nothing to be stale")
    }
}

extension MoviesRefresherTests {
    @Test("a reload applies new movies settings and refuses bad ones whole")
    func reload() throws {
        let feature = try MoviesFeature(services: services)
        #expect(throws: SettingsError.self) {
            _ = try feature.prepareReload(SettingsReader(environment: ["MARQUEE_MOVIES_REFRESH_SECONDS": "0"]))
        }
        let apply = try feature.prepareReload(SettingsReader(environment: ["MARQUEE_GHIBLI_BASE_URL": fake.baseURL, "MARQUEE_MOVIES_REFRESH_SECONDS": "2.5"]))
        apply()
        guard case .object(let status) = feature.status(), case .object(let refresh) = status["refresh"] else {
            Issue.record("no status")
            return
        }
        #expect(refresh["intervalSeconds"] == .double(2.5))
    }
}
