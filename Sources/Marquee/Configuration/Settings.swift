import Crypto
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
    public var maxBodyBytes: Int
    public var drainTime: Duration
    public var logLevel: LogLevelSetting
    /// The SHA-256 of MARQUEE_ADMIN_TOKEN, hashed once here rather than per admin request;
    /// the token itself is kept nowhere.
    public let adminTokenDigest: [UInt8]?
    /// Test-only: stop sending WATCHDOG=1 so that systemd kills and restarts the worker.
    public var stallWatchdog: Bool
    /// Not reloadable: the HTTP client is built once per worker.
    public var upstreamTimeouts: UpstreamClient.Timeouts
    public let reader: SettingsReader

    public enum LogLevelSetting: String, Sendable, CaseIterable {
        case debug, info, notice, warning, error
    }

    public init(_ reader: SettingsReader, stateDirectory: String? = nil) throws(SettingsError) {
        self.reader = reader
        let defaultStore = stateDirectory.map { "\($0)/store" } ?? "/var/lib/marquee/store"
        storeDirectory = reader.string("MARQUEE_STORE_DIR", default: defaultStore)
        storeMaxBytes = try reader.int("MARQUEE_STORE_MAX_MB", default: 1024, range: 16...1_048_576) << 20
        storeSync = try reader.choice("MARQUEE_STORE_SYNC", default: StoreOptions.SyncMode.durable)
        storeReserve = Double(try reader.int("MARQUEE_STORE_RESERVE_PERCENT", default: 15, range: 5...50)) / 100
        threads = try reader.int("MARQUEE_THREADS", default: 8, range: 1...256)
        maxBodyBytes = try reader.int("MARQUEE_MAX_BODY_BYTES", default: 1 << 20, range: 1...(64 << 20))
        drainTime = try reader.seconds("MARQUEE_DRAIN_SECONDS", default: .seconds(10), range: 0...600)
        logLevel = try reader.choice("MARQUEE_LOG_LEVEL", default: LogLevelSetting.info)
        let token = reader.string("MARQUEE_ADMIN_TOKEN")
        if let token, token.count < 16 {
            throw SettingsError(variable: "MARQUEE_ADMIN_TOKEN", problem: "must be at least 16 characters")
        }
        adminTokenDigest = token.map { Array(SHA256.hash(data: Data($0.utf8))) }
        stallWatchdog = try reader.bool("MARQUEE_TEST_STALL_WATCHDOG", default: false)
        upstreamTimeouts = UpstreamClient.Timeouts(
            connect: try reader.seconds("MARQUEE_UPSTREAM_CONNECT_TIMEOUT", default: .seconds(1), range: 0.05...30),
            total: try reader.seconds("MARQUEE_UPSTREAM_TIMEOUT", default: .seconds(3), range: 0.1...60)
        )
    }

    public var storeOptions: StoreOptions {
        // Eviction of cache entries starts below the reserve's edge, so that cache writes are
        // refused only when state alone fills the rest of the map.
        let evictAbove = min(0.80, 1 - storeReserve - 0.05)
        return StoreOptions(directory: storeDirectory, maxBytes: storeMaxBytes, sync: storeSync,
                            evictAbove: evictAbove, evictDownTo: evictAbove - 0.15, reserve: storeReserve)
    }
}
