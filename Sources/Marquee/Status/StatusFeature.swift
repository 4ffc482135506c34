import FastCGI
import Foundation
import LMDBStore

/// `GET /api/v1/status`: this worker's pid, uptime, counters, store figures and each
/// feature's own section. For the host itself only, in nginx and here.
public struct StatusFeature: Feature {
    public let name = "status"
    private let services: Services
    private let peers: @Sendable () -> [any Feature]

    public init(services: Services, peers: @escaping @Sendable () -> [any Feature]) {
        self.services = services
        self.peers = peers
    }

    public func register(in router: inout Router) {
        let services = self.services
        let peers = self.peers
        router.get("/api/v1/status", admitting: CallerRule.loopback.admission(services)) { _ in
            let counters = services.counters
            let uptime = ContinuousClock.now - services.startedAt
            let settings = services.settings
            var document: [String: JSONValue] = [
                "pid": .int(Int(getpid())),
                "version": .string(MarqueeVersion.current),
                "uptimeSeconds": .int(Int(uptime.components.seconds)),
                "startedAt": .string(ISO8601DateFormatter().string(from: services.startedAtDate)),
                "requests": .object(["served": .int(counters.served), "inFlight": .int(counters.inFlight)]),
                "threads": .object(["total": .int(counters.threads), "busy": .int(counters.inFlight), "active": .int(counters.activeThreads)]),
                "connections": .int(counters.connections),
                "config": .object([
                    "generation": .int(services.configGeneration),
                    "maxBodyBytes": .int(settings.maxBodyBytes),
                    "logLevel": .string(settings.logLevel.rawValue),
                    "storeSync": .string(settings.storeSync.rawValue),
                    "internalNetworks": .array(settings.internalNetworks.map { .string($0.description) }),
                    "legacyUsers": .string(settings.legacyUsers.rawValue),
                ]),
            ]
            if let stats = try? services.store.stats() {
                document["store"] = .object([
                    "entries": .int(stats.entries),
                    "leases": .int(stats.leases),
                    "usedBytes": .int(stats.usedBytes),
                    "mapBytes": .int(stats.mapBytes),
                    "readers": .int(stats.readers),
                    "maxReaders": .int(stats.maxReaders),
                ])
            }
            var sections: [String: JSONValue] = [:]
            for feature in peers() { sections[feature.name] = feature.status() }
            document["features"] = .object(sections)
            return .json(200, JSONValue.object(document))
        }
    }
}
