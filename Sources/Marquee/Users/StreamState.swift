/// A user's stream leases, stored under `users/streams/<id>`. Expired leases are dropped
/// whenever the state is written and ignored whenever it is read, so they never count.
struct StreamState: Sendable, Equatable {
    private static let recordVersion: UInt8 = 1

    struct Lease: Sendable, Equatable {
        /// As the player first sent it.
        var stream: String
        /// Lowercased: the form streams are compared in.
        var key: String
        /// Milliseconds since the epoch.
        var startedAt: UInt64
        var expiresAt: UInt64

        func isLive(at now: UInt64) -> Bool { expiresAt > now }
    }

    var leases: [Lease] = []
    /// The last grant, heartbeat or release, in milliseconds since the epoch.
    var lastOnline: UInt64?

    func live(at now: UInt64) -> [Lease] {
        leases.filter { $0.isLive(at: now) }
    }

    enum GrantOutcome: Equatable {
        case granted(Lease, active: Int)
        /// The stream was already active: its lease is renewed and it takes no new slot.
        case renewed(Lease, active: Int)
        case refused(active: [Lease])
    }

    /// The limit check and the grant, on state read in the same write transaction.
    mutating func grant(_ stream: String, limit: Int, now: UInt64, lease: Duration) -> GrantOutcome {
        leases = live(at: now)
        let key = Identifier.streamKey(stream)
        let expiresAt = Self.expiry(now, lease)
        if let index = leases.firstIndex(where: { $0.key == key }) {
            leases[index].expiresAt = expiresAt
            lastOnline = now
            return .renewed(leases[index], active: leases.count)
        }
        guard leases.count < limit else { return .refused(active: leases) }
        let granted = Lease(stream: stream, key: key, startedAt: now, expiresAt: expiresAt)
        leases.append(granted)
        lastOnline = now
        return .granted(granted, active: leases.count)
    }

    /// The heartbeat: renews a live lease, or nil when the stream is not active.
    mutating func renew(_ stream: String, now: UInt64, lease: Duration) -> Lease? {
        leases = live(at: now)
        let key = Identifier.streamKey(stream)
        guard let index = leases.firstIndex(where: { $0.key == key }) else { return nil }
        leases[index].expiresAt = Self.expiry(now, lease)
        lastOnline = now
        return leases[index]
    }

    /// Frees the slot; false when the stream was not active.
    mutating func release(_ stream: String, now: UInt64) -> Bool {
        leases = live(at: now)
        let key = Identifier.streamKey(stream)
        guard let index = leases.firstIndex(where: { $0.key == key }) else { return false }
        leases.remove(at: index)
        lastOnline = now
        return true
    }

    private static func expiry(_ now: UInt64, _ lease: Duration) -> UInt64 {
        let (seconds, attoseconds) = lease.components
        return now + UInt64(max(0, seconds)) * 1000 + UInt64(max(0, attoseconds) / 1_000_000_000_000_000)
    }

    func encoded() -> [UInt8] {
        var writer = RecordWriter(version: Self.recordVersion)
        writer.integer(lastOnline ?? 0)
        writer.integer(UInt64(leases.count))
        for lease in leases {
            writer.integer(lease.startedAt)
            writer.integer(lease.expiresAt)
            writer.string(lease.stream)
        }
        return writer.bytes
    }

    /// The state in `bytes`; no bytes (no grant yet) is no streams.
    static func decode(_ bytes: [UInt8]?) throws -> StreamState {
        guard let bytes else { return StreamState() }
        var reader = try RecordReader(bytes, version: recordVersion)
        let lastOnline = try reader.integer()
        let count = try reader.integer()
        var state = StreamState(lastOnline: lastOnline == 0 ? nil : lastOnline)
        for _ in 0..<count {
            let startedAt = try reader.integer()
            let expiresAt = try reader.integer()
            let stream = try reader.string()
            state.leases.append(Lease(stream: stream, key: Identifier.streamKey(stream), startedAt: startedAt, expiresAt: expiresAt))
        }
        return state
    }
}
