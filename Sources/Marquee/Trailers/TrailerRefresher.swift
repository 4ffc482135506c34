import Foundation
import LMDBStore
import Logging
import NIOConcurrencyHelpers
import PostgresClient
import Synchronization

/// Re-validates stored answers older than MARQUEE_TRAILERS_REFRESH_AGE in the background, so
/// that a trailer added or pulled upstream shows up without a client asking. One worker runs
/// it at a time (a pool lease), walking the answers page by page and asking TMDB for the videos
/// again, at most MARQUEE_TRAILERS_REFRESH_RATE TMDB calls per second.
///
/// With a database the role is the cluster's, so it walks the cluster's answers in
/// PostgreSQL: the answers a film's onboarding left on another host are refreshed too.
final class TrailerRefresher: Sendable {
    static let interval: Duration = .seconds(1)
    static let pageSize = 32

    let lease: PoolLease
    private let store: Store
    private let shared: ClusterFlight?
    private let lookup: TrailerLookup
    private let settings: @Sendable () -> TrailersSettings
    private let logger: @Sendable () -> Logger
    private let cursor = NIOLockedValueBox<String?>(nil)
    /// When the next TMDB call is allowed.
    private let nextCallAt = NIOLockedValueBox<ContinuousClock.Instant>(.now)
    private let refreshed = Atomic<Int>(0)
    private let changed = Atomic<Int>(0)
    private let failures = Atomic<Int>(0)

    /// `database`: the role (and with it the TMDB rate) becomes the cluster's, not the host's.
    init(store: Store, lookup: TrailerLookup, settings: @escaping @Sendable () -> TrailersSettings,
         database: PostgresClient? = nil, logger: @escaping @Sendable () -> Logger) {
        self.lease = PoolLease(TrailerKeys.refresherLease, store: store, database: database)
        self.store = store
        self.shared = database.map { ClusterFlight(database: $0) }
        self.lookup = lookup
        self.settings = settings
        self.logger = logger
    }

    private struct Candidate {
        var key: String
        var url: String
        var record: TrailerRecord
    }

    func round() {
        let settings = settings()
        guard settings.refreshRate > 0, lease.claim() else { return }
        let page: [ClusterFlight.Stored]
        do {
            page = try storedAnswers(after: cursor.withLockedValue { $0 })
        } catch {
            logger().warning("cannot read the stored trailer answers", metadata: ["error": "\(error)"])
            return
        }
        cursor.withLockedValue { $0 = page.count < Self.pageSize ? nil : page.last?.key }
        let candidates = page.compactMap { answer -> Candidate? in
            guard answer.age > settings.refreshAge, let record = TrailerRecord(answer.value), record.status == 200,
                  let url = record.url else { return nil }
            return Candidate(key: answer.key, url: url, record: record)
        }
        for candidate in candidates {
            guard waitForTMDB(), lease.claim() else { return }
            refresh(candidate, settings: settings)
        }
    }

    /// The next page of answers: the cluster's with a database, else this host's store.
    private func storedAnswers(after: String?) throws -> [ClusterFlight.Stored] {
        if let shared { return try shared.page(prefix: TrailerKeys.answerPrefix, after: after, limit: Self.pageSize) }
        let now = StoreClock.nowMillis()
        return try store.scan(prefix: TrailerKeys.answerPrefix, after: after, limit: Self.pageSize).map { key, entry in
            ClusterFlight.Stored(key: key, value: entry.value, age: .milliseconds(Int64(now - min(now, entry.writtenAt))))
        }
    }

    private func refresh(_ candidate: Candidate, settings: TrailersSettings) {
        guard let film = try? FilmURL.parse(candidate.url, policy: settings.policy), TrailerKeys.answer(film) == candidate.key else { return }
        do {
            // With a database the re-validated answer replaces the cluster's copy too.
            let outcome = try lookup.answer(film, settings: settings, revalidate: true, logger: logger())
            spend(tmdbCalls: outcome.tmdbCalls, rate: settings.refreshRate)
            try store.put(candidate.key, outcome.record.bytes, ttl: outcome.lifetime, as: .disposable)
            refreshed.add(1, ordering: .relaxed)
            let before = candidate.record.response(.trailerURLs).body
            if outcome.record.status != 200 || outcome.record.response(.trailerURLs).body != before {
                changed.add(1, ordering: .relaxed)
                logger().notice("trailers changed upstream", metadata: ["url": "\(film.normalised)", "status": "\(outcome.record.status)"])
            }
        } catch {
            // The calls a failed chain made are unknown: count the one it was there for.
            spend(tmdbCalls: 1, rate: settings.refreshRate)
            failures.add(1, ordering: .relaxed)
            logger().warning("trailer refresh failed; the stored answer stays", metadata: ["url": "\(film.normalised)", "error": "\(error)"])
        }
    }

    /// Sleeps until a TMDB call is allowed; false when the worker stops meanwhile.
    private func waitForTMDB() -> Bool {
        while !lease.isStopped {
            let wait = nextCallAt.withLockedValue { $0 } - .now
            if wait <= .zero { return true }
            Thread.sleep(forTimeInterval: min(0.05, Double(wait.nanoseconds) / 1e9))
        }
        return false
    }

    private func spend(tmdbCalls: Int, rate: Int) {
        let cost = Duration.nanoseconds(Int64(tmdbCalls) * 1_000_000_000 / Int64(max(rate, 1)))
        nextCallAt.withLockedValue { $0 = max($0, .now) + cost }
    }

    func stop() {
        lease.stop()
    }

    var status: JSONValue {
        let settings = settings()
        return .object([
            "holder": lease.holder.map(JSONValue.string) ?? .null,
            "thisWorker": .bool(lease.isHeldHere),
            "refreshedHere": .int(refreshed.load(ordering: .relaxed)),
            "changedHere": .int(changed.load(ordering: .relaxed)),
            "failedHere": .int(failures.load(ordering: .relaxed)),
            "ageSeconds": .int(Int(settings.refreshAge.components.seconds)),
            "tmdbCallsPerSecond": .int(settings.refreshRate),
        ])
    }
}
