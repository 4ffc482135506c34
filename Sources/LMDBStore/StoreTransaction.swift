import CLMDB

#if canImport(Glibc)
import Glibc
#endif

/// A transaction handed to `Store.read` or `Store.write`. It must not outlive the closure,
/// and must not be carried across an `await`: LMDB's writer lock belongs to the thread.
public final class StoreTransaction {
    /// LMDB's limit on a key is 511 bytes; the index keys add 8.
    public static let maxKeyBytes = 500

    let txn: OpaquePointer
    let dbs: Databases
    public let writable: Bool
    public let now: UInt64
    private(set) var didWrite = false
    /// Something was added or replaced, not only deleted: the transaction may need room.
    private(set) var didPut = false

    init(txn: OpaquePointer, dbs: Databases, writable: Bool) {
        self.txn = txn
        self.dbs = dbs
        self.writable = writable
        self.now = StoreClock.nowMillis()
    }

    /// The value under `key` if it has not expired.
    public func get(_ key: String) throws -> [UInt8]? {
        guard let entry = try entry(key), !entry.isExpired(at: now) else { return nil }
        return entry.value
    }

    /// The entry under `key`, expired or not.
    public func entry(_ key: String) throws -> StoreEntry? {
        try withRaw(dbs.data, Array(key.utf8), StoreEntry.decode) ?? nil
    }

    /// Hands `body` the unexpired value under `key` where LMDB keeps it, without a copy, for
    /// readers that decode a large value on a hot path. The bytes are valid only inside `body`.
    public func withValue<T>(_ key: String, _ body: (UnsafeRawBufferPointer) throws -> T) throws -> T? {
        let found = try withRaw(dbs.data, Array(key.utf8)) { raw -> T? in
            guard let value = StoreEntry.value(in: raw, at: now) else { return nil }
            return try body(value)
        }
        return found ?? nil
    }

    public func put(_ key: String, _ value: [UInt8], ttl: Duration? = nil) throws {
        let keyBytes = try validated(key)
        let expiresAt = ttl.map { now + max(1, $0.milliseconds) } ?? 0
        try removeIndexes(of: keyBytes)
        let entry = StoreEntry(value: value, writtenAt: now, expiresAt: expiresAt)
        try putRaw(dbs.data, keyBytes, entry.encoded())
        if expiresAt != 0 {
            try putRaw(dbs.expiry, Self.indexKey(expiresAt, keyBytes), [])
            try putRaw(dbs.age, Self.indexKey(now, keyBytes), [])
        }
    }

    @discardableResult
    public func delete(_ key: String) throws -> Bool {
        let keyBytes = try validated(key)
        try removeIndexes(of: keyBytes)
        return try deleteRaw(dbs.data, keyBytes)
    }

    /// Entries whose key starts with `prefix`, in key order, after the key `after` if given.
    /// Expired entries are included: callers decide whether stale data still serves.
    public func scan(prefix: String, after: String? = nil, limit: Int = .max) throws -> [(key: String, entry: StoreEntry)] {
        var results: [(key: String, entry: StoreEntry)] = []
        let prefixBytes = Array(prefix.utf8)
        try withCursor(dbs.data) { cursor in
            var start = Array((after ?? prefix).utf8)
            if start.isEmpty { start = [0] }
            var key = MDB_val()
            var value = MDB_val()
            var rc = start.withUnsafeMutableBytes { bytes -> Int32 in
                key = MDB_val(mv_size: bytes.count, mv_data: bytes.baseAddress)
                return mdb_cursor_get(cursor, &key, &value, MDB_SET_RANGE)
            }
            while rc == 0 && results.count < limit {
                let keyBytes = Array(UnsafeRawBufferPointer(start: key.mv_data, count: key.mv_size))
                guard keyBytes.starts(with: prefixBytes) else { break }
                if after == nil || keyBytes != start,
                   let entry = StoreEntry.decode(UnsafeRawBufferPointer(start: value.mv_data, count: value.mv_size)) {
                    results.append((String(decoding: keyBytes, as: UTF8.self), entry))
                }
                rc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT)
            }
            if rc != 0 && rc != MDB_NOTFOUND { throw StoreError(code: rc, operation: "mdb_cursor_get") }
        }
        return results
    }

    /// Adds `delta` to the decimal integer under `key` (0 when absent) and returns the result.
    public func increment(_ key: String, by delta: Int64 = 1) throws -> Int64 {
        let current = try get(key).flatMap { Int64(String(decoding: $0, as: UTF8.self)) } ?? 0
        let next = current &+ delta
        try put(key, Array(String(next).utf8))
        return next
    }

    func count(of dbi: MDB_dbi) -> Int {
        var stat = MDB_stat()
        return mdb_stat(txn, dbi, &stat) == 0 ? Int(stat.ms_entries) : 0
    }

    // MARK: Raw access

    private func validated(_ key: String) throws(StoreError) -> [UInt8] {
        let bytes = Array(key.utf8)
        guard !bytes.isEmpty, bytes.count <= Self.maxKeyBytes else {
            throw StoreError(code: MDB_BAD_VALSIZE, operation: "key of \(bytes.count) bytes")
        }
        return bytes
    }

    private func removeIndexes(of keyBytes: [UInt8]) throws {
        guard let old = try raw(dbs.data, keyBytes).flatMap({ $0.withUnsafeBytes(StoreEntry.decode) }),
              old.expiresAt != 0 else { return }
        try deleteRaw(dbs.expiry, Self.indexKey(old.expiresAt, keyBytes))
        try deleteRaw(dbs.age, Self.indexKey(old.writtenAt, keyBytes))
    }

    static func indexKey(_ time: UInt64, _ keyBytes: [UInt8]) -> [UInt8] {
        var bytes = [UInt8]()
        bytes.reserveCapacity(8 + keyBytes.count)
        bytes.appendBigEndian(time)
        bytes.append(contentsOf: keyBytes)
        return bytes
    }

    func raw(_ dbi: MDB_dbi, _ keyBytes: [UInt8]) throws -> [UInt8]? {
        try withRaw(dbi, keyBytes) { Array($0) }
    }

    /// LMDB's own memory for the value: valid until this transaction ends or writes.
    func withRaw<T>(_ dbi: MDB_dbi, _ keyBytes: [UInt8], _ body: (UnsafeRawBufferPointer) throws -> T) throws -> T? {
        var keyBytes = keyBytes
        var value = MDB_val()
        let rc = keyBytes.withUnsafeMutableBytes { bytes -> Int32 in
            var key = MDB_val(mv_size: bytes.count, mv_data: bytes.baseAddress)
            return mdb_get(txn, dbi, &key, &value)
        }
        if rc == MDB_NOTFOUND { return nil }
        try check(rc, "mdb_get")
        return try body(UnsafeRawBufferPointer(start: value.mv_data, count: value.mv_size))
    }

    func putRaw(_ dbi: MDB_dbi, _ keyBytes: [UInt8], _ valueBytes: [UInt8]) throws(StoreError) {
        precondition(writable, "put in a read-only transaction")
        var keyBytes = keyBytes
        var valueBytes = valueBytes
        let rc = keyBytes.withUnsafeMutableBytes { keyBuffer in
            valueBytes.withUnsafeMutableBytes { valueBuffer -> Int32 in
                var key = MDB_val(mv_size: keyBuffer.count, mv_data: keyBuffer.baseAddress)
                var value = MDB_val(mv_size: valueBuffer.count, mv_data: valueBuffer.baseAddress)
                return mdb_put(txn, dbi, &key, &value, 0)
            }
        }
        try check(rc, "mdb_put")
        didWrite = true
        didPut = true
    }

    @discardableResult
    func deleteRaw(_ dbi: MDB_dbi, _ keyBytes: [UInt8]) throws(StoreError) -> Bool {
        precondition(writable, "delete in a read-only transaction")
        var keyBytes = keyBytes
        let rc = keyBytes.withUnsafeMutableBytes { bytes -> Int32 in
            var key = MDB_val(mv_size: bytes.count, mv_data: bytes.baseAddress)
            return mdb_del(txn, dbi, &key, nil)
        }
        if rc == MDB_NOTFOUND { return false }
        try check(rc, "mdb_del")
        didWrite = true
        return true
    }

    func withCursor<T>(_ dbi: MDB_dbi, _ body: (OpaquePointer) throws -> T) throws -> T {
        var cursor: OpaquePointer?
        try check(mdb_cursor_open(txn, dbi, &cursor), "mdb_cursor_open")
        defer { mdb_cursor_close(cursor) }
        return try body(cursor!)
    }

    /// The first key of an index, as (time, key) — the next eviction candidate.
    func firstIndexed(_ dbi: MDB_dbi) throws -> (time: UInt64, key: [UInt8])? {
        try withCursor(dbi) { cursor in
            var key = MDB_val()
            var value = MDB_val()
            let rc = mdb_cursor_get(cursor, &key, &value, MDB_FIRST)
            if rc == MDB_NOTFOUND { return nil }
            try check(rc, "mdb_cursor_get")
            let raw = UnsafeRawBufferPointer(start: key.mv_data, count: key.mv_size)
            guard raw.count > 8 else { return nil }
            let time = UInt64(bigEndian: raw.loadUnaligned(as: UInt64.self))
            return (time, Array(raw[8...]))
        }
    }
}
