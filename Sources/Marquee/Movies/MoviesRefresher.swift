import Foundation
import LMDBStore
import Logging
import NIOConcurrencyHelpers

/// Keeps the pool's stored movies fresh while asking the upstream at most once per refresh
/// interval, whatever the number of workers:
/// - every worker runs `round()` in a loop; only the holder of the `movies/leader` lease
///   refreshes, and another worker takes the lease over when its holder dies;
/// - every attempt, the leader's or a first page load's, is claimed in one store transaction
///   that checks the pool-wide pacing in `movies/state` and takes the `movies/fetch` lease, so
///   two attempts never overlap and never come closer than the interval;
/// - a success stores the page and the JSON, rendered once, with their validators; a failure
///   keeps the data and marks it stale;
/// - with a database, the upstream's answer is shared by the cluster (`ClusterFlight`, one
///   interval's time to live): one host fetches it per interval, the others take it from the
///   database, dated by when the upstream answered, and pace their next attempt on that date,
///   so that every host's copy stays within the interval of the upstream.
final class MoviesRefresher: Sendable {
    enum Keys {
        static let json = "movies/json"
        static let page = "movies/page"
        static let state = "movies/state"
        static let leaderLease = "movies/leader"
        static let fetchLease = "movies/fetch"
    }

    /// Far above the 24 kB of the real /films and /people: a bigger body is not a Ghibli answer.
    static let maxBodyBytes = 1 << 20

    struct Attempt: Sendable {
        var owner: String
        var startedAt: UInt64
    }

    enum Claim: Equatable {
        case go(owner: String, startedAt: UInt64)
        case inFlight
        case notDue(retryAt: UInt64)
        case notLeader
        case loaded
    }

    private let store: Store
    private let upstream: UpstreamClient
    private let page: MoviesPage
    private let representations: RepresentationCache
    private let currentSettings: NIOLockedValueBox<MoviesSettings>
    private let logger: @Sendable () -> Logger
    private let flight: ClusterFlight?

    static let clusterKey = "movies/ghibli"

    init(store: Store, upstream: UpstreamClient, page: MoviesPage, representations: RepresentationCache,
         settings: MoviesSettings, flight: ClusterFlight? = nil, logger: @escaping @Sendable () -> Logger) {
        self.store = store
        self.flight = flight
        self.upstream = upstream
        self.page = page
        self.representations = representations
        self.currentSettings = NIOLockedValueBox(settings)
        self.logger = logger
    }

    /// Read once per use: a reload replaces them.
    var settings: MoviesSettings { currentSettings.withLockedValue { $0 } }

    func apply(_ settings: MoviesSettings) {
        currentSettings.withLockedValue { $0 = settings }
    }

    /// The longest one attempt may take: two upstream calls, each within its own deadline.
    var attemptLimit: Duration { upstream.timeouts.total * 2 + .seconds(2) }

    /// Long enough to cover an attempt between two renewals.
    private var leaderTTL: Duration { attemptLimit + .seconds(5) }

    // MARK: Leader loop

    /// One round of a worker's loop: renew or take the lead, and refresh when it is due.
    func round() {
        do {
            guard case .go(let owner, let startedAt) = try claim(asLeader: true) else { return }
            refresh(Attempt(owner: owner, startedAt: startedAt))
        } catch {
            logger().error("movies: the refresh loop cannot use the store", metadata: ["error": "\(error)"])
        }
    }

    /// Gives the lead up at once on a clean stop, so that another worker takes it next round.
    func resign() {
        _ = try? store.releaseLease(Keys.leaderLease)
    }


    // MARK: First page load

    enum FirstLoad: Equatable {
        case loaded
        case unavailable(retryAfterSeconds: Int)
    }

    /// A page load on an empty store: loads the catalogue, or waits for the attempt already
    /// under way in any worker; only one attempt runs pool-wide.
    func awaitFirstLoad() -> FirstLoad {
        let deadline = ContinuousClock.now + attemptLimit
        do {
            while true {
                let seen = try store.read { txn -> (loaded: Bool, inFlight: Bool) in
                    let lease = try txn.lease(Keys.fetchLease)
                    return (try txn.entry(Keys.json) != nil, lease.map { $0.state == .held && $0.isLive(at: txn.now) } ?? false)
                }
                if seen.loaded { return .loaded }
                if !seen.inFlight {
                    switch try claim(asLeader: false) {
                    case .go(let owner, let startedAt):
                        refresh(Attempt(owner: owner, startedAt: startedAt))
                        return try store.entry(Keys.json) != nil ? .loaded : unavailable(after: nil)
                    case .loaded:
                        return .loaded
                    case .notDue(let retryAt):
                        return unavailable(after: retryAt)
                    case .inFlight, .notLeader:
                        break
                    }
                }
                guard ContinuousClock.now < deadline else { return unavailable(after: nil) }
                Thread.sleep(forTimeInterval: 0.02)
            }
        } catch {
            logger().error("movies: the first load cannot use the store", metadata: ["error": "\(error)"])
            return unavailable(after: nil)
        }
    }

    private func unavailable(after retryAt: UInt64?) -> FirstLoad {
        let fallback = Int(settings.emptyStoreRetry.components.seconds)
        guard let retryAt else { return .unavailable(retryAfterSeconds: max(1, fallback)) }
        let now = StoreClock.nowMillis()
        return .unavailable(retryAfterSeconds: max(1, Int((retryAt.saturatingSubtract(now) + 999) / 1000)))
    }

    // MARK: Claiming an attempt

    /// In one write transaction: the lead (for the loop), the pacing, and the fetch lease that
    /// marks the attempt under way. `.go` means this caller must now call `refresh`.
    func claim(asLeader: Bool) throws -> Claim {
        let settings = self.settings
        let fetchOwner = "\(Lease.processOwner)/\(UInt64.random(in: 1...UInt64.max))"
        let attemptLimit = self.attemptLimit
        let leaderTTL = self.leaderTTL
        return try store.write(.disposable) { txn -> Claim in
            if asLeader, try !txn.acquireLease(Keys.leaderLease, owner: Lease.processOwner, ttl: leaderTTL) {
                return .notLeader
            }
            let loaded = try txn.entry(Keys.json) != nil
            if !asLeader && loaded { return .loaded }
            if let fetch = try txn.lease(Keys.fetchLease), fetch.state == .held, fetch.isLive(at: txn.now) {
                return .inFlight
            }
            var state = RefreshState.decode(try txn.get(Keys.state))
            let pause = loaded ? settings.refreshInterval : settings.emptyStoreRetry
            if let last = state.lastAttemptAt, txn.now < last + pause.millis {
                return .notDue(retryAt: last + pause.millis)
            }
            _ = try txn.acquireLease(Keys.fetchLease, owner: fetchOwner, ttl: attemptLimit)
            state.lastAttemptAt = txn.now
            state.lastAttemptPid = Int(getpid())
            try txn.put(Keys.state, state.encoded())
            return .go(owner: fetchOwner, startedAt: txn.now)
        }
    }

    // MARK: Refreshing

    /// Asks the upstream, and stores the new page and JSON, or marks the stored ones stale.
    func refresh(_ attempt: Attempt) {
        let settings = self.settings
        let logger = logger()
        let loaded: GhibliCatalogue.Loaded
        var upstreamAnsweredAt = attempt.startedAt
        do {
            let bodies = try fetchBodies(settings, answeredAt: &upstreamAnsweredAt)
            loaded = try GhibliCatalogue.load(films: bodies.films, people: bodies.people)
        } catch {
            if case .malformed? = error as? UpstreamError { upstream.metrics.undecodable("ghibli") }
            recordFailure(attempt, reason: "the Studio Ghibli API \(error)")
            return
        }
        let answeredAt = upstreamAnsweredAt
        for id in loaded.untitled {
            logger.warning("movies: a film without a title was left out", metadata: ["film": "\(id)"])
        }
        let document = MoviesDocument(refreshedAt: Date(millis: answeredAt), stale: false, staleSince: nil, movies: loaded.movies)
        do {
            let (json, html) = try represent(document, refreshedAt: answeredAt)
            let stored = try store.write(.disposable) { txn -> Bool in
                try txn.releaseLease(Keys.fetchLease, owner: attempt.owner)
                var state = RefreshState.decode(try txn.get(Keys.state))
                // The cluster's answer may be older than this attempt: the next one is due
                // when that answer expires, as on every other host.
                if answeredAt < attempt.startedAt, state.lastAttemptAt == attempt.startedAt {
                    state.lastAttemptAt = answeredAt
                    try txn.put(Keys.state, state.encoded())
                }
                // An attempt that overran its lease may finish after a later one: never go back.
                guard (state.refreshedAt ?? 0) < answeredAt else { return false }
                try txn.put(Keys.json, json.encoded())
                try txn.put(Keys.page, html.encoded())
                state.refreshedAt = answeredAt
                state.staleSince = nil
                state.lastError = nil
                state.succeeded += 1
                state.films = loaded.movies.count
                state.people = loaded.people
                state.untitledFilms = loaded.untitled.count
                try txn.put(Keys.state, state.encoded())
                return true
            }
            if stored { representations.replaced() }
            logger.info("movies: refreshed", metadata: [
                "films": "\(loaded.movies.count)", "people": "\(loaded.people)", "stored": "\(stored)",
                "ms": "\(StoreClock.nowMillis().saturatingSubtract(attempt.startedAt))",
            ])
        } catch {
            recordFailure(attempt, reason: "storing the refreshed movies failed: \(error)")
        }
    }

    private struct Bodies: Codable {
        var films: Data
        var people: Data
    }

    /// Both upstream bodies: through the cluster when there is a database (`answeredAt` then
    /// says when the upstream answered, maybe on another host), else from the upstream. A
    /// database that cannot be used costs a call of this host's own.
    private func fetchBodies(_ settings: MoviesSettings, answeredAt: inout UInt64) throws -> (films: [UInt8], people: [UInt8]) {
        let direct = { () throws -> (films: [UInt8], people: [UInt8]) in
            (try self.fetch("films", from: settings.ghibliBaseURL), try self.fetch("people", from: settings.ghibliBaseURL))
        }
        guard let flight else { return try direct() }
        var fetchedHere: (films: [UInt8], people: [UInt8])?
        do {
            let answer = try flight.answer(Self.clusterKey, wait: attemptLimit) {
                let bodies = try direct()
                fetchedHere = bodies
                return (Array(try JSONEncoder().encode(Bodies(films: Data(bodies.films), people: Data(bodies.people)))),
                        settings.refreshInterval)
            }
            let bodies = try JSONDecoder().decode(Bodies.self, from: Data(answer.value))
            answeredAt = StoreClock.nowMillis().saturatingSubtract(answer.age.millis)
            return (Array(bodies.films), Array(bodies.people))
        } catch let error as UpstreamError {
            throw error
        } catch {
            logger().warning("movies: the cluster's copy cannot be used; asking the upstream", metadata: ["error": "\(error)"])
            return try fetchedHere ?? direct()
        }
    }

    private func fetch(_ path: String, from base: URL) throws(UpstreamError) -> [UInt8] {
        let response = try upstream.get(base.appendingPathComponent(path), upstream: "ghibli", maxBytes: Self.maxBodyBytes, logger: logger())
        guard response.status == 200 else { throw .status(response.status) }
        return response.body
    }

    /// Counts the failure and, the first time since the last success, stores the last good
    /// data again marked stale, so that the page says since when.
    private func recordFailure(_ attempt: Attempt, reason: String) {
        let logger = logger()
        let failedAt = StoreClock.nowMillis()
        do {
            let before = try store.read { txn in (RefreshState.decode(try txn.get(Keys.state)), try txn.get(Keys.json)) }
            var staleCopies: (json: Representation, html: Representation)?
            if before.0.staleSince == nil, let stored = before.1.flatMap(Representation.decode),
               var document = try? MoviesDocument.makeDecoder().decode(MoviesDocument.self, from: Data(stored.body)) {
                document.stale = true
                document.staleSince = Date(millis: failedAt)
                staleCopies = try represent(document, refreshedAt: stored.refreshedAt)
            }
            let (failures, hasData) = try store.write(.state) { txn -> (Int, Bool) in
                try txn.releaseLease(Keys.fetchLease, owner: attempt.owner)
                var state = RefreshState.decode(try txn.get(Keys.state))
                state.failed += 1
                state.lastFailureAt = failedAt
                state.lastError = reason
                if state.refreshedAt != nil && state.staleSince == nil {
                    state.staleSince = failedAt
                    if let staleCopies, state.refreshedAt == before.0.refreshedAt {
                        try txn.put(Keys.json, staleCopies.json.encoded())
                        try txn.put(Keys.page, staleCopies.html.encoded())
                    }
                }
                try txn.put(Keys.state, state.encoded())
                return (state.failed, state.refreshedAt != nil)
            }
            if staleCopies != nil { representations.replaced() }
            logger.error(hasData ? "movies: refresh failed, the last good data stays" : "movies: load failed, nothing to serve yet",
                         metadata: ["reason": "\(reason)", "failures": "\(failures)"])
        } catch {
            logger.error("movies: refresh failed and could not be recorded", metadata: ["reason": "\(reason)", "error": "\(error)"])
        }
    }

    private func represent(_ document: MoviesDocument, refreshedAt: UInt64) throws -> (json: Representation, html: Representation) {
        let json = try MoviesDocument.makeEncoder().encode(document)
        return (Representation(body: Array(json), refreshedAt: refreshedAt, stale: document.stale),
                Representation(body: page.render(document), refreshedAt: refreshedAt, stale: document.stale))
    }

    // MARK: Reading

    func state() -> RefreshState? {
        Self.state(in: store)
    }

    static func state(in store: Store) -> RefreshState? {
        (try? store.get(Keys.state)).map { RefreshState.decode($0) }
    }

    /// The pid of the worker that holds the lead, while it is alive.
    static func leaderPid(in store: Store) -> Int? {
        guard let lease = try? store.lease(Keys.leaderLease), lease.isLive(at: StoreClock.nowMillis()) else { return nil }
        return lease.owner.split(separator: "@").first.flatMap { Int($0) }
    }
}

extension Date {
    init(millis: UInt64) {
        self.init(timeIntervalSince1970: Double(millis) / 1000)
    }
}

extension UInt64 {
    func saturatingSubtract(_ other: UInt64) -> UInt64 {
        self > other ? self - other : 0
    }
}

extension Duration {
    var millis: UInt64 {
        let (seconds, attoseconds) = components
        return UInt64(max(0, seconds)) * 1000 + UInt64(max(0, attoseconds)) / 1_000_000_000_000_000
    }
}
