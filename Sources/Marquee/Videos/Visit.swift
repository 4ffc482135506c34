import Foundation
import Synchronization

/// One successful read of a video: who (client address, user agent), what and when.
/// Every field a client writes is capped in UTF-8 bytes, so one stored visit stays under
/// `maxEncodedBytes` whatever the request carried.
public struct Visit: Codable, Sendable, Equatable {
    /// Unique pool-wide and fixed when the read happens, so that moving the visit again after
    /// a failure overwrites instead of counting it twice.
    public var visitId: String
    public var videoId: String
    public var ip: String
    /// Milliseconds since the Unix epoch.
    public var at: UInt64
    public var userAgent: String

    /// Caps in UTF-8 bytes. An address is canonical text (at most 45 bytes for IPv6) unless
    /// nginx passed something unparseable; the video id is checked against the catalogue.
    public static let maxUserAgentBytes = 512
    public static let maxIpBytes = 64
    /// The JSON of one visit: the user agent at most doubles when escaped (`"` and `\`),
    /// the id, the address, the time and the keys take the rest.
    public static let maxEncodedBytes = 1_536
    /// Per video, the newest visits a visit store keeps: as many as the visits route answers at most.
    public static let recentKept = 100
    private static let sequence = Atomic<UInt64>(0)
    private static let processTag = String(UInt32.random(in: 0...UInt32.max), radix: 16)

    /// `request`, when nginx passed it, names the HTTP request and its start: nginx sends the
    /// same parameters again when it retries a request on a second worker (the first one died
    /// after recording the visit, before answering), so the retry makes the same visit id and
    /// counts once.
    public init(videoId: String, ip: String, userAgent: String?, at: UInt64, request: ProxiedRequest? = nil) {
        // Time first, so that the outbox keeps arrival order; the pid, a tag drawn at start
        // (pids are reused) and a counter keep ids apart within one millisecond.
        let at = request?.startMillis ?? at
        let millis = String(at)
        let unique: String
        if let request {
            unique = request.id
        } else {
            let sequence = Self.sequence.wrappingAdd(1, ordering: .relaxed).newValue
            unique = "\(getpid())-\(Self.processTag)-\(sequence)"
        }
        visitId = String(repeating: "0", count: max(0, 13 - millis.count)) + millis + "-" + unique
        self.videoId = videoId
        self.ip = Self.truncated(ip, toBytes: Self.maxIpBytes)
        self.at = at
        self.userAgent = Self.truncated(Self.withoutControls(userAgent ?? ""), toBytes: Self.maxUserAgentBytes)
    }

    /// A visit as a store holds it, its fields already capped.
    init(visitId: String, videoId: String, ip: String, at: UInt64, userAgent: String) {
        self.visitId = visitId
        self.videoId = videoId
        self.ip = ip
        self.at = at
        self.userAgent = userAgent
    }

    /// The longest prefix of `text` that fits in `limit` UTF-8 bytes, cut between characters
    /// (grapheme clusters) so that no accent is parted from its letter. A single character
    /// longer than the limit (a letter followed by hundreds of combining marks) is cut between
    /// Unicode scalars instead: the result is always valid UTF-8 and never over the limit.
    public static func truncated(_ text: String, toBytes limit: Int) -> String {
        guard text.utf8.count > limit else { return text }
        var end = text.startIndex
        var bytes = 0
        for index in text.indices {
            let next = text.index(after: index)
            let size = text.utf8.distance(from: index, to: next)
            guard bytes + size <= limit else { break }
            bytes += size
            end = next
        }
        if end > text.startIndex { return String(text[..<end]) }
        var scalars = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            guard bytes + scalar.utf8.count <= limit else { break }
            bytes += scalar.utf8.count
            scalars.append(scalar)
        }
        return String(scalars)
    }

    /// Control characters carry nothing a reader of the visits needs, and each would grow
    /// sixfold in JSON (`\u0001`).
    static func withoutControls(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else { return text }
        return String(String.UnicodeScalarView(text.unicodeScalars.filter { $0.properties.generalCategory != .control }))
    }

    /// The time a visit id starts with.
    static func time(ofId id: Substring) -> UInt64? {
        UInt64(id.prefix { $0 != "-" })
    }

    /// Newest first under the video's prefix, so that the recent visits are the first keys.
    var tableKey: String {
        let reversed = String(UInt64.max - at, radix: 16)
        return VideoKeys.visitsPrefix(videoId) + String(repeating: "0", count: 16 - reversed.count) + reversed + "-" + visitId
    }

    func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        return (try? Array(encoder.encode(self))) ?? []
    }

    static func decode(_ bytes: [UInt8]) -> Visit? {
        try? JSONDecoder().decode(Visit.self, from: Data(bytes))
    }
}

/// Where the video feature keeps its state in the store. None of it has a time-to-live:
/// it is state, never evicted; the visits are bounded by count instead.
/// - `videos/catalogue/<videoId>`: the video, as the JSON `GET /video/{videoId}` answers.
/// - `videos/outbox/<visitId>`: a visit read but not yet moved (JSON `Visit`), at most
///   `VisitOutbox.maxQueued`.
/// - `videos/visits/<videoId>/<reversed time>-<visitId>`: a moved visit, newest first, the
///   newest `Visit.recentKept` per video (without a database; see `LMDBVisitStore`).
/// - `videos/visit-count/<videoId>`, `videos/stats/*`: counters kept in the same transactions.
/// - `videos/outbox-rejected/<visitId>`: an outbox entry that did not decode, set aside.
/// - With a database: `videos/outbox-claim` (the number and keys of the batch being moved into
///   PostgreSQL), `videos/stats/claims` (the last number) and `videos/outbox-mover` (this
///   store's id in the `video_visit_movers` table); see `VisitOutbox.claim`.
/// - lease `videos/visits-consumer`. The round-robin cursor is the store's shared counter
///   `videos-cdn-cursor` (the file `videos-cdn-cursor.counter` of the store directory).
enum VideoKeys {
    static let cataloguePrefix = "videos/catalogue/"
    static let outboxPrefix = "videos/outbox/"
    static let rejectedPrefix = "videos/outbox-rejected/"
    static let cdnCursor = "videos-cdn-cursor"
    static let consumerLease = "videos/visits-consumer"
    static let enqueued = "videos/stats/enqueued"
    static let moved = "videos/stats/moved"
    static let rejected = "videos/stats/rejected"
    static let visitCountPrefix = "videos/visit-count/"
    static let claim = "videos/outbox-claim"
    static let claims = "videos/stats/claims"
    static let mover = "videos/outbox-mover"

    static func catalogue(_ videoId: String) -> String { cataloguePrefix + videoId }
    static func outbox(_ visitId: String) -> String { outboxPrefix + visitId }
    static func visitsPrefix(_ videoId: String) -> String { "videos/visits/\(videoId)/" }
    static func visitCount(_ videoId: String) -> String { visitCountPrefix + videoId }
}
