import FastCGI
import Foundation
import LMDBStore
import NIOConcurrencyHelpers
import SharedMetrics

/// The video catalogue, its visits and signed playback links:
/// - `GET /video/{videoId}` answers the video and records a visit in the host's outbox, from
///   which the visit store takes it: a count and the newest visits per video (see `VisitStore`);
///   catalogue and visit store are PostgreSQL's when a database is configured;
/// - `POST /video/token` signs a catalogue video's sources for the next CDN in turn;
/// - `GET /api/v1/tokens/verify` checks an `hmac-sha256` link for nginx's auth_request;
/// - `PUT /api/v1/videos/{videoId}` and `GET /api/v1/videos/{videoId}/visits` (admin token).
public struct VideosFeature: Feature {
    public let name = "videos"
    private let services: Services
    private let runtime: Runtime

    /// The feature's settings, which a reload replaces whole; read once per request.
    struct Snapshot: Sendable {
        var cdns: CDNConfiguration
        var clientAddress: ClientAddress
        /// Off by default: a `{"video"}` body is then signed only for sources the catalogue
        /// holds for its `videoId`, so the route cannot sign other files of the media root.
        var signAnySource: Bool

        init(_ reader: SettingsReader) throws(SettingsError) {
            cdns = try CDNConfiguration.load(reader)
            clientAddress = try ClientAddress.load(reader)
            signAnySource = try reader.bool(VideosFeature.signAnySourceVariable, default: false)
        }
    }

    final class Runtime: Sendable {
        let settings: NIOLockedValueBox<Snapshot>
        let minter: TokenMinter
        let verifier = TokenVerifier()
        let consumer: VisitConsumer
        let consumerThread = NIOLockedValueBox<BackgroundThread?>(nil)

        init(settings: Snapshot, services: Services) {
            self.settings = NIOLockedValueBox(settings)
            minter = TokenMinter(store: services.store)
            consumer = VisitConsumer(store: services.store, visits: VideosFeature.visits(services.store, database: services.database)) {
                services.logger
            }
        }

        var current: Snapshot { settings.withLockedValue { $0 } }
    }

    static let signAnySourceVariable = "MARQUEE_VIDEO_SIGN_ANY_SOURCE"

    /// An outbox whose oldest visit waited this long has no working consumer.
    static let stalledAfterMillis: UInt64 = 60_000
    static let defaultRecentVisits = 20
    static let maxRecentVisits = Visit.recentKept

    /// PostgreSQL's catalogue when the operator configured a database, else the embedded one.
    public static func catalogue(_ store: Store, database: Database?) -> any VideoCatalogue {
        database.map { PostgresVideoCatalogue(client: $0.client) } ?? LMDBVideoCatalogue(store: store)
    }

    static func visits(_ store: Store, database: Database?) -> any VisitStore {
        database.map { PostgresVisitStore(client: $0.client) } ?? LMDBVisitStore(store: store)
    }

    public init(services: Services) throws(SettingsError) {
        self.services = services
        runtime = Runtime(settings: try Snapshot(services.settings.reader), services: services)
    }

    /// Parses this feature's settings, reading the CDN file, for `marquee config check`.
    public static func validate(_ reader: SettingsReader) throws(SettingsError) {
        _ = try Snapshot(reader)
    }

    public func start() {
        warnAboutLegacyScheme(runtime.current.cdns)
        let consumer = runtime.consumer
        runtime.consumerThread.withLockedValue {
            $0 = BackgroundThread(name: "video-visits", interval: VisitConsumer.interval) { consumer.round() }
        }
    }

    public func stop() {
        runtime.consumerThread.withLockedValue { $0?.stop() }
        runtime.consumer.stop()
    }

    public func prepareReload(_ reader: SettingsReader) throws(SettingsError) -> @Sendable () -> Void {
        let settings = try Snapshot(reader)
        let feature = self
        return {
            feature.runtime.settings.withLockedValue { $0 = settings }
            feature.warnAboutLegacyScheme(settings.cdns)
        }
    }

    private func warnAboutLegacyScheme(_ configuration: CDNConfiguration) {
        let legacy = configuration.cdns.filter { $0.scheme == .md5Legacy }.map(\.name)
        guard !legacy.isEmpty else { return }
        services.logger.warning("CDNs use md5-legacy: its links never expire, are the same for every client and rest on MD5; keep it for migration only", metadata: [
            "cdns": .array(legacy.map { .string($0) }),
        ])
    }

    public func register(in router: inout Router) {
        let services = self.services
        let runtime = self.runtime
        let catalogue = Self.catalogue(services.store, database: services.database)
        let outbox = VisitOutbox(store: services.store)
        let visits = Self.visits(services.store, database: services.database)

        router.get("/video/{videoId}") { request in
            let videoId = request.parameters["videoId"] ?? ""
            guard Video.isValidId(videoId), let body = try catalogue.json(of: videoId) else {
                throw HTTPError.notFound("no video \(videoId)")
            }
            if request.method != "HEAD" {
                let visit = Visit(videoId: videoId, ip: Self.clientIp(request, runtime.current), userAgent: request.header("User-Agent"),
                                  at: StoreClock.nowMillis(), request: request.proxied)
                do {
                    try outbox.append(visit)
                } catch is VisitOutbox.Full {
                    // Health reports the waiting outbox; a line per refused read would flood the log.
                    throw HTTPError(.visitNotRecorded, "the visit could not be recorded; try again")
                } catch {
                    // A read answered 2xx is a counted visit; one that cannot be recorded is not answered.
                    request.logger(services.logger).error("cannot record a visit", metadata: ["videoId": "\(videoId)", "error": "\(error)"])
                    throw HTTPError(.visitNotRecorded, "the visit could not be recorded; try again")
                }
            }
            return .jsonBytes(200, body)
        }

        router.post("/video/token") { request in
            let settings = runtime.current
            guard !settings.cdns.cdns.isEmpty else {
                throw HTTPError(.noCDNConfigured,
                                "no CDN is configured: set \(CDNConfiguration.variable), or \(CDNConfiguration.secureLinkSecretVariable) for this nginx's /media/secure/")
            }
            let video: Video
            let legacyId: String?
            switch try TokenRequest.parse(try JSONReader.object(try request.body())) {
            case .video(let given, let id):
                video = settings.signAnySource ? given : try Self.catalogued(given, in: catalogue)
                legacyId = id
            case .catalogue(let videoId):
                guard Video.isValidId(videoId), let stored = try catalogue.video(videoId) else {
                    throw HTTPError.notFound("no video \(videoId)")
                }
                video = stored
                legacyId = nil
            }
            guard let cdn = runtime.minter.chooseCDN(in: settings.cdns) else {
                throw HTTPError(.noCDNConfigured, "no CDN is configured")
            }
            let urls = runtime.minter.sign(video, for: cdn, clientIp: { Self.clientIp(request, settings) }, nowSeconds: Self.nowSeconds())
            return .jsonBytes(200, video.json(sourceURLs: urls, legacyId: legacyId))
        }

        router.get("/api/v1/tokens/verify", admitting: CallerRule.loopback.admission(services)) { request in
            let settings = runtime.current
            if let refusal = runtime.verifier.verify(originalURI: request.header("X-Original-URI"), clientIp: Self.protectedClientIp(request, settings),
                                                     configuration: settings.cdns, nowSeconds: Self.nowSeconds()) {
                throw HTTPError(refusal.code, refusal.message)
            }
            return .noContent
        }

        router.put("/api/v1/videos/{videoId}") { request in
            try AdminAuthorization.require(request, services: services)
            let videoId = request.parameters["videoId"] ?? ""
            guard Video.isValidId(videoId) else {
                throw HTTPError.badRequest(.invalidVideoId, "a video id is 1 to 64 of A-Z a-z 0-9 . _ - (and not 'token')")
            }
            var errors = FieldErrors()
            let video = Video.parse(try JSONReader.object(try request.body()), at: "", idFromPath: videoId, errors: &errors)
            try errors.check()
            guard let video else { throw HTTPError.badRequest(.invalidBody, "the body is not a video") }
            let created = try catalogue.save([video]) == 1
            // The stored answer, with the `_id` the catalogue kept or gave it.
            return .jsonBytes(created ? 201 : 200, try catalogue.json(of: video.videoId) ?? video.json())
        }

        router.get("/api/v1/videos/{videoId}/visits") { request in
            try AdminAuthorization.require(request, services: services)
            let videoId = request.parameters["videoId"] ?? ""
            var limit = Self.defaultRecentVisits
            if let text = request.query["limit"] {
                guard let value = Int(text), (1...Self.maxRecentVisits).contains(value) else {
                    throw HTTPError.badRequest(.invalidQuery, "limit must be a whole number from 1 to \(Self.maxRecentVisits)")
                }
                limit = value
            }
            guard Video.isValidId(videoId) else { throw HTTPError.notFound("no video \(videoId)") }
            let count = try visits.count(of: videoId)
            let known = try count > 0 || catalogue.json(of: videoId) != nil
            guard known else { throw HTTPError.notFound("no video \(videoId)") }
            let recent = try visits.visits(of: videoId, limit: limit).map { visit -> JSONValue in
                .object([
                    "visitId": .string(visit.visitId),
                    "ip": .string(visit.ip),
                    "at": .string(Self.timestamp(visit.at)),
                    "userAgent": .string(visit.userAgent),
                ])
            }
            return .json(200, JSONValue.object(["videoId": .string(videoId), "count": .int(count), "recent": .array(recent)]))
        }
    }

    /// The catalogue's own entry for each source of `given`, in the order asked: 404 when the
    /// catalogue has no such video, 403 when a source is not one of that video's.
    static func catalogued(_ given: Video, in catalogue: any VideoCatalogue) throws -> Video {
        guard Video.isValidId(given.videoId), let stored = try catalogue.video(given.videoId) else {
            throw HTTPError.notFound("no video \(given.videoId) in the catalogue")
        }
        var sources: [Video.Source] = []
        for (index, source) in given.sources.enumerated() {
            guard let known = stored.sources.first(where: { $0.src == source.src }) else {
                throw HTTPError(.sourceNotCatalogued, "video.sources[\(index)].src is not a source of video \(stored.videoId) in the catalogue")
            }
            sources.append(known)
        }
        return Video(videoId: stored.videoId, title: stored.title, sources: sources)
    }

    static func clientIp(_ request: Request, _ settings: Snapshot) -> String {
        settings.clientAddress.resolve(remoteAddress: request.param("REMOTE_ADDR"), forwardedFor: request.header("X-Forwarded-For"))
    }

    /// The client of the request that nginx's auth_request guards. That subrequest comes from
    /// nginx itself, so its REMOTE_ADDR is loopback, and names the client in
    /// ORIGINAL_REMOTE_ADDR: a param only that internal location sets, which no client header can
    /// become, and which is read here only, behind the loopback rule.
    static func protectedClientIp(_ request: Request, _ settings: Snapshot) -> String {
        settings.clientAddress.resolve(remoteAddress: request.param("ORIGINAL_REMOTE_ADDR") ?? request.param("REMOTE_ADDR"),
                                       forwardedFor: request.header("X-Forwarded-For"))
    }

    static func nowSeconds() -> Int {
        Int(StoreClock.nowMillis() / 1000)
    }

    static func timestamp(_ millis: UInt64) -> String {
        Date.ISO8601FormatStyle(includingFractionalSeconds: true).format(Date(timeIntervalSince1970: Double(millis) / 1000))
    }

    public func collectMetrics(into page: inout MetricsPage) {
        guard let figures = try? VisitOutbox(store: services.store).figures() else { return }
        let lag = figures.oldestQueuedAt.map { Double(StoreClock.nowMillis().saturatingSubtract($0)) / 1000 } ?? 0
        page.gauge("marquee_visits_outbox_depth", [], Double(figures.queued))
        page.gauge("marquee_visits_outbox_lag_seconds", [], lag)
        page.gauge("marquee_queue_oldest_item_age_seconds", [("queue", "visits")], lag)
    }

    public func status() -> JSONValue {
        let settings = runtime.current
        let minted = runtime.minter.figures
        let verified = runtime.verifier.figures
        let consumer = runtime.consumer.figures
        var visits: [String: JSONValue] = [
            "consumerHere": .bool(consumer.holding),
            "moveFailuresHere": .int(consumer.failures),
        ]
        if let figures = try? VisitOutbox(store: services.store).figures() {
            visits["enqueued"] = .int(figures.enqueued)
            visits["moved"] = .int(figures.moved)
            visits["rejected"] = .int(figures.rejected)
            visits["queued"] = .int(figures.queued)
        }
        if let lease = try? services.store.lease(VideoKeys.consumerLease), lease.state == .held, lease.isLive(at: StoreClock.nowMillis()) {
            visits["consumer"] = .string(lease.owner)
        } else {
            visits["consumer"] = .null
        }
        return .object([
            "cdns": .array(settings.cdns.cdns.map { cdn in
                .object([
                    "name": .string(cdn.name),
                    "address": .string(cdn.address),
                    "scheme": .string(cdn.scheme.rawValue),
                    "signingKey": .string(cdn.signingKey.id),
                    "keys": .array(cdn.keys.map { .object(["id": .string($0.id), "retired": .bool($0.retired)]) }),
                    "lifetimeSeconds": .int(cdn.lifetimeSeconds),
                    "bindClientIp": .bool(cdn.bindClientIp),
                ])
            }),
            "signAnySource": .bool(settings.signAnySource),
            "tokensMinted": .object(Dictionary(uniqueKeysWithValues: minted.byScheme.map { ($0.key.rawValue, JSONValue.int($0.value)) })),
            "roundRobinStoreFailures": .int(minted.cursorFailures),
            "verifications": .object(["accepted": .int(verified.accepted), "refused": .int(verified.refused)]),
            "visits": .object(visits),
        ])
    }

    public func degradation() -> String? {
        guard let oldest = try? VisitOutbox(store: services.store).oldestQueuedAt() else { return nil }
        let waited = StoreClock.nowMillis() &- oldest
        guard waited > Self.stalledAfterMillis, waited < UInt64.max / 2 else { return nil }
        return "visits wait in the outbox: the oldest for \(waited / 1000) s"
    }
}
