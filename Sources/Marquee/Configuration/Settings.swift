import Crypto
import FastCGI
import Foundation
import LMDBStore

/// The worker's own settings. Features read theirs from the same `SettingsReader`.
public struct Settings: Sendable {
    public var storeDirectory: String
    public var storeMaxBytes: Int
    public var storeSync: StoreOptions.SyncMode
    /// The share of the map that cache and visit writes may not use.
    public var storeReserve: Double
    public var threads: Int
    /// Request threads that take part at once while none is stalled (`ThreadGate`).
    public var activeThreads: Int
    public var maxBodyBytes: Int
    public var drainTime: Duration
    /// The connections kept open between requests: bound, idle timeout, read deadline (reloadable).
    public var connectionLimits: ConnectionLimits
    public var logLevel: LogLevelSetting
    /// The SHA-256 of MARQUEE_ADMIN_TOKEN, hashed once here rather than per admin request;
    /// the token itself is kept nowhere.
    public let adminTokenDigest: [UInt8]?
    /// Test-only: stop sending WATCHDOG=1 so that systemd kills and restarts the worker.
    public var stallWatchdog: Bool
    /// A request still running after this is answered 504; its thread still stuck at twice
    /// this recycles the worker.
    public var requestTimeout: Duration
    /// A request still running after this is logged once ("slow request").
    public var slowRequest: Duration
    /// A store write that has not committed after this makes health 503 and stops the watchdog.
    public var storeStall: Duration
    /// The callers the legacy user routes answer (MARQUEE_INTERNAL_NETWORKS); nginx's allow
    /// list for them is rendered from the same setting.
    public var internalNetworks: [IPNetwork]
    /// MARQUEE_LEGACY_USERS: `open` lets any address call the legacy user routes.
    public var legacyUsers: LegacyUsersAccess
    /// Not reloadable: the HTTP client is built once per worker.
    public var upstreamTimeouts: UpstreamClient.Timeouts
    /// MARQUEE_METRICS: off keeps the request path free of metrics and /metrics answers 404.
    public var metricsEnabled: Bool
    /// MARQUEE_DATABASE_*: nil keeps every record in the embedded store. Not reloadable.
    public var database: DatabaseSettings?
    public let reader: SettingsReader

    public enum LogLevelSetting: String, Sendable, CaseIterable {
        case debug, info, notice, warning, error
    }

    public enum LegacyUsersAccess: String, Sendable, CaseIterable {
        case `internal`, open
    }

    /// Loopback and the private ranges, as nginx has always admitted to the legacy user routes.
    public static let defaultInternalNetworks = "127.0.0.0/8,::1,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16"

    public init(_ reader: SettingsReader, stateDirectory: String? = nil) throws(SettingsError) {
        self.reader = reader
        let defaultStore = stateDirectory.map { "\($0)/store" } ?? "/var/lib/marquee/store"
        storeDirectory = reader.string("MARQUEE_STORE_DIR", default: defaultStore)
        storeMaxBytes = try reader.int("MARQUEE_STORE_MAX_MB", default: 1024, range: 16...1_048_576) << 20
        storeSync = try reader.choice("MARQUEE_STORE_SYNC", default: StoreOptions.SyncMode.durable)
        storeReserve = Double(try reader.int("MARQUEE_STORE_RESERVE_PERCENT", default: 15, range: 5...50)) / 100
        threads = try reader.int("MARQUEE_THREADS", default: 8, range: 1...256)
        activeThreads = try reader.int("MARQUEE_ACTIVE_THREADS", default: max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))), range: 1...256)
        maxBodyBytes = try reader.int("MARQUEE_MAX_BODY_BYTES", default: 1 << 20, range: 1...(64 << 20))
        drainTime = try reader.seconds("MARQUEE_DRAIN_SECONDS", default: .seconds(10), range: 0...600)
        connectionLimits = ConnectionLimits(
            maxConnections: try reader.int("MARQUEE_FASTCGI_MAX_CONNECTIONS", default: 1024, range: 16...1_000_000),
            idleTimeout: try reader.seconds("MARQUEE_FASTCGI_IDLE_TIMEOUT", default: .seconds(60), range: 0.5...3600),
            readDeadline: try reader.seconds("MARQUEE_FASTCGI_READ_DEADLINE", default: .seconds(3), range: 0.1...60)
        )
        if connectionLimits.maxConnections <= threads {
            throw SettingsError(variable: "MARQUEE_FASTCGI_MAX_CONNECTIONS", problem: "must be above MARQUEE_THREADS (\(threads))")
        }
        logLevel = try reader.choice("MARQUEE_LOG_LEVEL", default: LogLevelSetting.info)
        let token = reader.string("MARQUEE_ADMIN_TOKEN")
        if let token, token.count < 16 {
            throw SettingsError(variable: "MARQUEE_ADMIN_TOKEN", problem: "must be at least 16 characters")
        }
        adminTokenDigest = token.map { Array(SHA256.hash(data: Data($0.utf8))) }
        stallWatchdog = try reader.bool("MARQUEE_TEST_STALL_WATCHDOG", default: false)
        requestTimeout = try reader.seconds("MARQUEE_REQUEST_TIMEOUT", default: .seconds(20), range: 0.5...3600)
        slowRequest = try reader.seconds("MARQUEE_SLOW_REQUEST_SECONDS", default: .seconds(5), range: 0.1...3600)
        storeStall = try reader.seconds("MARQUEE_STORE_STALL_SECONDS", default: .seconds(10), range: 0.5...600)
        switch IPNetwork.list(reader.string("MARQUEE_INTERNAL_NETWORKS", default: Self.defaultInternalNetworks)) {
        case .success(let networks): internalNetworks = networks
        case .failure(let error):
            throw SettingsError(variable: "MARQUEE_INTERNAL_NETWORKS", problem: "'\(error.entry)' is not an IP address or CIDR range")
        }
        legacyUsers = try reader.choice("MARQUEE_LEGACY_USERS", default: LegacyUsersAccess.internal)
        metricsEnabled = try reader.bool("MARQUEE_METRICS", default: true)
        upstreamTimeouts = UpstreamClient.Timeouts(
            connect: try reader.seconds("MARQUEE_UPSTREAM_CONNECT_TIMEOUT", default: .seconds(1), range: 0.05...30),
            total: try reader.seconds("MARQUEE_UPSTREAM_TIMEOUT", default: .seconds(3), range: 0.1...60)
        )
        database = try DatabaseSettings(reader)
    }

    /// Each worker's metrics file lives here (see `SharedMetricsFactory`).
    public var metricsDirectory: String { "\(storeDirectory)/metrics" }

    public var storeOptions: StoreOptions {
        // Eviction of cache entries starts below the reserve's edge, so that cache writes are
        // refused only when state alone fills the rest of the map.
        let evictAbove = min(0.80, 1 - storeReserve - 0.05)
        var options = StoreOptions(directory: storeDirectory, maxBytes: storeMaxBytes, sync: storeSync,
                                   evictAbove: evictAbove, evictDownTo: evictAbove - 0.15, reserve: storeReserve)
        options.metricsPrefix = MetricNames.storePrefix
        return options
    }
}
