import FastCGI
import LMDBStore

/// `GET /api/v1/health`: 200 while this worker serves and reads the store; `degraded` when
/// a feature serves stale data; 503 when the store cannot be read.
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

    public func register(in router: inout Router) {
        let store = services.store
        let peers = self.peers
        router.get("/api/v1/health") { _ in
            do {
                _ = try store.get("health/probe")
            } catch {
                return .json(503, JSONValue.object(["status": .string("unavailable"), "reason": .string("store: \(error)")]))
            }
            var reasons: [String: JSONValue] = [:]
            for feature in peers() {
                if let reason = feature.degradation() { reasons[feature.name] = .string(reason) }
            }
            if reasons.isEmpty { return .jsonBytes(200, Self.ok) }
            return .json(200, JSONValue.object(["status": .string("degraded"), "degraded": .object(reasons)]))
        }
    }
}
