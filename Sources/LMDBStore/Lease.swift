import CLMDB

#if canImport(Glibc)
import Glibc
#endif

/// A named, expiring claim in the store that at most one owner holds pool-wide.
public struct Lease: Sendable, Equatable {
    public enum State: UInt8, Sendable {
        case held = 0
        /// The holder gave up with an error; waiters that started before it read `payload`.
        case failed = 1
    }

    public var owner: String
    public var expiresAt: UInt64
    public var state: State
    public var changedAt: UInt64
    public var payload: [UInt8]

    /// This machine's host name: the host part of `processOwner`.
    public static let hostName: String = {
        var name = [CChar](repeating: 0, count: 256)
        gethostname(&name, name.count - 1)
        return String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }()

    /// `pid@host`, so that a lease left by a process killed on this host can be taken over
    /// at once instead of after its time-to-live.
    public static let processOwner = "\(getpid())@\(hostName)"

    public func isLive(at now: UInt64) -> Bool {
        expiresAt > now && !ownerIsGone
    }

    private var ownerIsGone: Bool {
        let process = owner.split(separator: "/", maxSplits: 1).first.map(String.init) ?? owner
        let mine = Lease.processOwner.split(separator: "@", maxSplits: 1)
        let parts = process.split(separator: "@", maxSplits: 1)
        guard parts.count == 2, mine.count == 2, parts[1] == mine[1], let pid = pid_t(parts[0]) else { return false }
        return kill(pid, 0) == -1 && errno == ESRCH
    }

    func encoded() -> [UInt8] {
        var bytes = [UInt8]()
        bytes.appendLittleEndian(expiresAt)
        bytes.appendLittleEndian(changedAt)
        bytes.append(state.rawValue)
        let ownerBytes = Array(owner.utf8.prefix(255))
        bytes.append(UInt8(ownerBytes.count))
        bytes.append(contentsOf: ownerBytes)
        bytes.append(contentsOf: payload)
        return bytes
    }

    static func decode(_ bytes: [UInt8]) -> Lease? {
        guard bytes.count >= 18 else { return nil }
        return bytes.withUnsafeBytes { raw -> Lease? in
            let ownerCount = Int(raw[17])
            guard raw.count >= 18 + ownerCount, let state = State(rawValue: raw[16]) else { return nil }
            return Lease(
                owner: String(decoding: raw[18..<(18 + ownerCount)], as: UTF8.self),
                expiresAt: raw.loadLittleEndianUInt64(at: 0),
                state: state,
                changedAt: raw.loadLittleEndianUInt64(at: 8),
                payload: Array(raw[(18 + ownerCount)...])
            )
        }
    }
}

extension StoreTransaction {
    public func lease(_ name: String) throws -> Lease? {
        try raw(dbs.leases, Array(name.utf8)).flatMap(Lease.decode)
    }

    /// Takes or renews `name` for `owner` unless another owner holds it live.
    public func acquireLease(_ name: String, owner: String, ttl: Duration) throws -> Bool {
        if let current = try lease(name), current.owner != owner, current.state == .held, current.isLive(at: now) {
            return false
        }
        let lease = Lease(owner: owner, expiresAt: now + ttl.milliseconds, state: .held, changedAt: now, payload: [])
        try putRaw(dbs.leases, Array(name.utf8), lease.encoded())
        return true
    }

    /// Gives `name` up if `owner` holds it.
    @discardableResult
    public func releaseLease(_ name: String, owner: String) throws -> Bool {
        guard let current = try lease(name), current.owner == owner else { return false }
        return try deleteRaw(dbs.leases, Array(name.utf8))
    }

    /// Deletes up to `limit` leases that no live owner holds: expired ones, failures kept past
    /// their time, and those of processes gone from this host. Returns how many went.
    public func sweepLeases(limit: Int = .max) throws -> Int {
        var stale: [[UInt8]] = []
        try withCursor(dbs.leases) { cursor in
            var key = MDB_val()
            var value = MDB_val()
            var rc = mdb_cursor_get(cursor, &key, &value, MDB_FIRST)
            while rc == 0 && stale.count < limit {
                let bytes = Array(UnsafeRawBufferPointer(start: value.mv_data, count: value.mv_size))
                if Lease.decode(bytes).map({ !$0.isLive(at: now) }) ?? true {
                    stale.append(Array(UnsafeRawBufferPointer(start: key.mv_data, count: key.mv_size)))
                }
                rc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT)
            }
            if rc != 0 && rc != MDB_NOTFOUND { throw StoreError(code: rc, operation: "mdb_cursor_get") }
        }
        for name in stale { try deleteRaw(dbs.leases, name) }
        return stale.count
    }

    func failLease(_ name: String, owner: String, payload: [UInt8], keepFor: Duration) throws {
        guard let current = try lease(name), current.owner == owner else { return }
        let failed = Lease(owner: owner, expiresAt: now + keepFor.milliseconds, state: .failed, changedAt: now, payload: payload)
        try putRaw(dbs.leases, Array(name.utf8), failed.encoded())
    }
}

extension Store {
    /// Takes or renews the pool-wide lease `name` for this process. A state write: a lease is
    /// small, one per name, and a consumer refused its lease would stop the queue it drains.
    public func acquireLease(_ name: String, ttl: Duration, owner: String = Lease.processOwner) throws -> Bool {
        try write(.state) { try $0.acquireLease(name, owner: owner, ttl: ttl) }
    }

    @discardableResult
    public func releaseLease(_ name: String, owner: String = Lease.processOwner) throws -> Bool {
        try write(.state) { try $0.releaseLease(name, owner: owner) }
    }

    /// Deletes the leases that no live owner holds (see `StoreTransaction.sweepLeases`).
    @discardableResult
    public func sweepLeases() throws -> Int {
        try write(.state) { try $0.sweepLeases(limit: 10_000) }
    }

    public func lease(_ name: String) throws -> Lease? {
        try read { try $0.lease(name) }
    }
}
