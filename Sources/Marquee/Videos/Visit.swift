import Foundation
import Synchronization

/// One successful read of a video: who (client address, user agent), what and when.
public struct Visit: Codable, Sendable, Equatable {
    /// Unique pool-wide and fixed when the read happens, so that moving the visit again after
    /// a failure overwrites instead of counting it twice.
    public var visitId: String
    public var videoId: String
    public var ip: String
    /// Milliseconds since the Unix epoch.
    public var at: UInt64
    public var userAgent: String

    static let maxUserAgentLength = 512
    private static let sequence = Atomic<UInt64>(0)
    private static let processTag = String(UInt32.random(in: 0...UInt32.max), radix: 16)

    public init(videoId: String, ip: String, userAgent: String?, at: UInt64) {
        // Time first, so that the outbox keeps arrival order; the pid, a tag drawn at start
        // (pids are reused) and a counter keep ids apart within one millisecond.
        let sequence = Self.sequence.wrappingAdd(1, ordering: .relaxed).newValue
        let millis = String(at)
        visitId = String(repeating: "0", count: max(0, 13 - millis.count)) + millis + "-\(getpid())-\(Self.processTag)-\(sequence)"
        self.videoId = videoId
        self.ip = ip
        self.at = at
        self.userAgent = String((userAgent ?? "").prefix(Self.maxUserAgentLength))
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
        (try? Array(JSONEncoder().encode(self))) ?? []
    }

    static func decode(_ bytes: [UInt8]) -> Visit? {
        try? JSONDecoder().decode(Visit.self, from: Data(bytes))
    }
}

/// Where the video feature keeps its state in the store. None of it has a time-to-live:
/// it is state, never evicted.
/// - `videos/catalogue/<videoId>`: the video, as the JSON `GET /video/{videoId}` answers.
/// - `videos/outbox/<visitId>`: a visit read but not yet moved (JSON `Visit`).
/// - `videos/visits/<videoId>/<reversed time>-<visitId>`: a moved visit, newest first.
/// - `videos/visit-count/<videoId>`, `videos/stats/*`: counters kept in the same transactions.
/// - `videos/outbox-rejected/<visitId>`: an outbox entry that did not decode, set aside.
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

    static func catalogue(_ videoId: String) -> String { cataloguePrefix + videoId }
    static func outbox(_ visitId: String) -> String { outboxPrefix + visitId }
    static func visitsPrefix(_ videoId: String) -> String { "videos/visits/\(videoId)/" }
    static func visitCount(_ videoId: String) -> String { "videos/visit-count/\(videoId)" }
}
