import FastCGI
import LMDBStore

/// `GET /api/v1/health`: 200 while this worker serves and its store reads and commits;
/// `degraded` when a feature serves stale data; 503 when the store cannot be read, when a
/// store write has not committed within MARQUEE_STORE_STALL_SECONDS (or failed), or when every
/// other request thread is stuck past the request time limit.
public struct HealthFeature: Feature {
    public let name = "health"
    private let services: Services
    private let peers: @Sendable () -> [any Feature]

    /// `peers` are the features whose degradation health reports.
    public init(services: Services, peers: @escaping @Sendable () -> [any Feature]) {
        self.services = services
        self.peers = peers
    }

    private static let ok = Array(#"{"status":"ok"}"#.utf8)

    /// A store that refused a write for want of room in the last minute, or that takes only
    /// state writes, is degraded: writes answer 507 until the operator makes room.
    static func storeRoomReason(_ store: Store) -> String? {
        guard let room = try? store.room() else { return nil }
        let percent = Int(room.usedFraction * 100)
        if let last = room.lastFullAt, last + 60_000 > StoreClock.nowMillis() {
            return "full: a write found no room in the last minute (\(percent)% of the map in use)"
        }
        if room.disposableRefused {
            return "\(percent)% of the map in use: cache and visit writes are refused, the reserve is kept for state"
        }
        return nil
    }

    public func register(in router: inout Router) {
        let services = self.services
        let peers = self.peers
        router.get("/api/v1/health") { _ in
            if let reason = Self.failure(services) {
                return .json(503, JSONValue.object(["status": .string("unavailable"), "reason": .string(reason)]))
            }
            var reasons: [String: JSONValue] = [:]
            if let reason = Self.storeRoomReason(services.store) { reasons["store"] = .string(reason) }
            for feature in peers() {
                if let reason = feature.degradation() { reasons[feature.name] = .string(reason) }
            }
            if reasons.isEmpty { return .jsonBytes(200, Self.ok) }
            return .json(200, JSONValue.object(["status": .string("degraded"), "degraded": .object(reasons)]))
        }
    }

    /// Why this worker cannot serve, or nil. The health request itself holds one thread, so
    /// the threads count as all stuck when every other one is.
    static func failure(_ services: Services) -> String? {
        do {
            _ = try services.store.get(StoreProbe.key)
        } catch {
            return "store: \(error)"
        }
        let settings = services.settings
        if let problem = services.storeProbe.problem(bound: settings.storeStall) { return "store: \(problem)" }
        let stuck = services.supervisor.overdue(limit: settings.requestTimeout)
        if settings.threads > 1 && stuck >= settings.threads - 1 {
            return "requests: \(stuck) of \(settings.threads) threads are stuck past the request time limit"
        }
        return nil
    }
}
