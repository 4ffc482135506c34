import CLMDB
import NIOConcurrencyHelpers
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One LMDB environment shared by every process of the pool: a bounded key-value store
/// with time-to-live, eviction, atomic read-modify-write and pool-wide leases.
///
/// Open it once per process, after any fork: LMDB drops a process's locks when a second
/// handle on the same files is closed, so `open` hands back the handle already open.
public final class Store: @unchecked Sendable {
    public let options: StoreOptions
    let env: OpaquePointer
    let dbs: Databases
    private let readers = NIOLockedValueBox<[ReaderHandle]>([])
    /// Each thread keeps one reset reader of its own, so that the request threads' reads do
    /// not queue on `readers`' lock; the pool serves nested reads and new threads. A thread's
    /// reader is aborted when the thread ends.
    private let threadReader: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { reader in mdb_txn_abort(OpaquePointer(reader)) }
        return key
    }()
    private let writesSinceUsageCheck = Atomic<Int>(0)
    private let counters = Mutex<[String: SharedCounter]>([:])
    /// When a write of this process last failed for want of room, in milliseconds since the epoch.
    private let lastFullAt = Atomic<UInt64>(0)
    let metrics: StoreMetrics

    private static let openStores = Mutex<[String: Store]>([:])

    /// Opens the environment in `options.directory`, creating it if needed.
    public static func open(_ options: StoreOptions) throws(StoreError) -> Store {
        try openStores.withLock { (stores) throws(StoreError) -> Store in
            if let store = stores[options.directory] { return store }
            let store = try Store(options)
            stores[options.directory] = store
            return store
        }
    }

    private init(_ options: StoreOptions) throws(StoreError) {
        self.options = options
        self.metrics = StoreMetrics(prefix: options.metricsPrefix)
        mkdir(options.directory, 0o750)
        var env: OpaquePointer?
        try check(mdb_env_create(&env), "mdb_env_create")
        guard let env else { throw StoreError(code: ENOMEM, operation: "mdb_env_create") }
        do {
            try check(mdb_env_set_maxdbs(env, 8), "mdb_env_set_maxdbs")
            try check(mdb_env_set_maxreaders(env, options.maxReaders), "mdb_env_set_maxreaders")
            try check(mdb_env_set_mapsize(env, options.maxBytes), "mdb_env_set_mapsize")
            // Request threads are pooled and a transaction may not stay on one OS thread.
            var flags = UInt32(MDB_NOTLS)
            if options.sync != .full { flags |= UInt32(MDB_NOSYNC) }
            try check(mdb_env_open(env, options.directory, flags, 0o640), "mdb_env_open \(options.directory)")
            var dead: Int32 = 0
            mdb_reader_check(env, &dead)
            self.dbs = try Databases.open(env)
        } catch {
            mdb_env_close(env)
            throw error
        }
        self.env = env
    }

    // MARK: Transactions

    /// Runs `body` in a read-only snapshot.
    public func read<T>(_ body: (StoreTransaction) throws -> T) throws -> T {
        let txn = try takeReader()
        defer { returnReader(txn) }
        return try body(StoreTransaction(txn: txn, dbs: dbs, writable: false))
    }

    /// Runs `body` in the pool-wide write transaction: every process sees all of it or none.
    /// `writeClass` says whether the write may use the map's reserve (see `WriteClass`).
    /// `durable` flushes the commit to disk before returning, whatever the sync mode.
    /// A full map evicts cache entries and runs `body` again, so `body` must not have effects
    /// outside the transaction. When eviction frees too little, the write throws a `StoreError`
    /// whose `isFull` is true, and the store takes writes again once room is freed.
    public func write<T>(_ writeClass: WriteClass, durable: Bool = false, _ body: (StoreTransaction) throws -> T) throws -> T {
        var attempt = 0
        while true {
            do {
                let started = ContinuousClock.now
                let (result, crowded) = try writeOnce(writeClass, body)
                if durable && options.sync == .durable {
                    try check(mdb_env_sync(env, 1), "mdb_env_sync")
                }
                metrics.recordWrite(ContinuousClock.now - started)
                if crowded { _ = try? evict() }
                return result
            } catch let error as StoreError where error.isFull {
                // The eviction's own commit may find the map full too; then nothing was freed.
                let freed = attempt < 3 ? ((try? evict(force: error.isMapFull)) ?? 0) : 0
                guard freed > 0 else {
                    metrics.fullRefusals.increment()
                    lastFullAt.store(StoreClock.nowMillis(), ordering: .relaxed)
                    throw error
                }
                attempt += 1
            } catch let error as StoreError where error.isMapResized && attempt < 3 {
                attempt += 1
                try check(mdb_env_set_mapsize(env, 0), "mdb_env_set_mapsize")
            }
        }
    }

    private func writeOnce<T>(_ writeClass: WriteClass, _ body: (StoreTransaction) throws -> T) throws -> (T, Bool) {
        try withWriteTransaction(begin: { () throws(StoreError) in try beginTransaction(flags: 0) }) { txn in
            let transaction = StoreTransaction(txn: txn, dbs: dbs, writable: true)
            let before = usage(txn).usedPages
            let result = try body(transaction)
            guard transaction.didPut else { return (result, false) }
            // Checked on every write that adds, so that none eats into what it may not use.
            let usage = usage(txn)
            if writeClass == .disposable && usage.fraction > options.disposableCeiling {
                throw StoreError(code: StoreError.reserveCode, operation: "disposable write above \(Int(options.disposableCeiling * 100))% of the map")
            }
            // The last pages are kept for deletes, which copy the pages they touch: without
            // them a full map could not be emptied without a restart. Once a write has reached
            // into them, only deletes are taken, even writes that would fit in pages in use.
            let kept = max(64, usage.mapPages / 100)
            if before > usage.mapPages - kept || usage.usedPages > usage.mapPages - kept / 2 {
                throw StoreError(code: MDB_MAP_FULL, operation: "write into the pages kept for deletes")
            }
            return (result, usage.fraction > options.evictAbove && shouldCheckUsage())
        }
    }

    private func shouldCheckUsage() -> Bool {
        writesSinceUsageCheck.wrappingAdd(1, ordering: .relaxed).newValue % 16 == 0
    }

    func beginTransaction(flags: UInt32) throws(StoreError) -> OpaquePointer {
        var txn: OpaquePointer?
        var rc = mdb_txn_begin(env, nil, flags, &txn)
        if rc == MDB_MAP_RESIZED {
            // Another process opened a larger map; adopting it needs no transaction of ours open.
            try check(mdb_env_set_mapsize(env, 0), "mdb_env_set_mapsize")
            rc = mdb_txn_begin(env, nil, flags, &txn)
        }
        try check(rc, "mdb_txn_begin")
        return txn!
    }

    /// Read transactions are reset and renewed rather than begun anew: with MDB_NOTLS a new one
    /// takes the reader-table lock to find a slot, a renewed one keeps its slot.
    private func takeReader() throws(StoreError) -> OpaquePointer {
        if let kept = pthread_getspecific(threadReader) {
            pthread_setspecific(threadReader, nil)
            let txn = OpaquePointer(kept)
            if mdb_txn_renew(txn) == 0 { return txn }
            mdb_txn_abort(txn)
        } else if let txn = readers.withLockedValue({ $0.popLast() })?.txn {
            let rc = mdb_txn_renew(txn)
            if rc == 0 { return txn }
            mdb_txn_abort(txn)
        }
        return try beginTransaction(flags: UInt32(MDB_RDONLY))
    }

    private func returnReader(_ txn: OpaquePointer) {
        mdb_txn_reset(txn)
        guard pthread_getspecific(threadReader) != nil else {
            pthread_setspecific(threadReader, UnsafeRawPointer(txn))
            return
        }
        let handle = ReaderHandle(txn: txn)
        readers.withLockedValue { $0.append(handle) }
    }

    /// The pool-wide counter `name` (lower-case letters, digits and `-`), in the file
    /// `<name>.counter` of the store directory. See `SharedCounter`.
    public func counter(_ name: String) throws(StoreError) -> SharedCounter {
        guard !name.isEmpty, name.utf8.allSatisfy({ (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || $0 == UInt8(ascii: "-") }) else {
            throw StoreError(code: EINVAL, operation: "counter name '\(name)'")
        }
        return try counters.withLock { (counters) throws(StoreError) -> SharedCounter in
            if let counter = counters[name] { return counter }
            let counter = try SharedCounter(path: options.directory + "/" + name + ".counter")
            counters[name] = counter
            return counter
        }
    }

    // MARK: Convenience

    /// The entry under `key` if it has not expired.
    public func get(_ key: String) throws -> [UInt8]? {
        try read { try $0.get(key) }
    }

    /// `body` applied to the unexpired value under `key`, read in place (see
    /// `StoreTransaction.withValue`).
    public func withValue<T>(_ key: String, _ body: (UnsafeRawBufferPointer) throws -> T) throws -> T? {
        try read { try $0.withValue(key, body) }
    }

    /// The entry under `key`, expired or not.
    public func entry(_ key: String) throws -> StoreEntry? {
        try read { try $0.entry(key) }
    }

    public func put(_ key: String, _ value: [UInt8], ttl: Duration? = nil, as writeClass: WriteClass, durable: Bool = false) throws {
        try write(writeClass, durable: durable) { try $0.put(key, value, ttl: ttl) }
    }

    /// Deletes need no room of their own, so they run as state writes.
    @discardableResult
    public func delete(_ key: String) throws -> Bool {
        try write(.state) { try $0.delete(key) }
    }

    public func scan(prefix: String, after: String? = nil, limit: Int = .max) throws -> [(key: String, entry: StoreEntry)] {
        try read { try $0.scan(prefix: prefix, after: after, limit: limit) }
    }

    /// Adds `delta` to the integer under `key` and returns the new value, atomically pool-wide.
    @discardableResult
    public func increment(_ key: String, by delta: Int64 = 1, as writeClass: WriteClass, durable: Bool = false) throws -> Int64 {
        try write(writeClass, durable: durable) { try $0.increment(key, by: delta) }
    }

    // MARK: Maintenance

    /// Frees reader slots left by processes that died with a transaction open.
    @discardableResult
    public func clearStaleReaders() -> Int {
        var dead: Int32 = 0
        mdb_reader_check(env, &dead)
        return Int(dead)
    }

    /// Deletes every entry whose key starts with `prefix`, with its index entries.
    @discardableResult
    public func purge(prefix: String) throws -> Int {
        try write(.state) { txn in
            var removed = 0
            for (key, _) in try txn.scan(prefix: prefix, after: nil, limit: .max) where try txn.delete(key) {
                removed += 1
            }
            return removed
        }
    }

    public func stats() throws -> StoreStats {
        var info = MDB_envinfo()
        mdb_env_info(env, &info)
        var readerCount = 0
        withUnsafeMutablePointer(to: &readerCount) { counter in
            _ = mdb_reader_list(env, { line, context in
                // The first line is a header; each further line is one slot in use.
                if let line, strncmp(line, "    pid", 7) != 0 {
                    context!.assumingMemoryBound(to: Int.self).pointee += 1
                }
                return 0
            }, counter)
        }
        return try read { transaction in
            let usage = self.usage(transaction.txn)
            return StoreStats(
                entries: transaction.count(of: dbs.data),
                leases: transaction.count(of: dbs.leases),
                usedBytes: usage.usedPages * usage.pageSize,
                mapBytes: info.me_mapsize,
                readers: readerCount,
                maxReaders: Int(options.maxReaders),
                reserveBytes: Int(Double(info.me_mapsize) * (1 - options.disposableCeiling)),
                lastFullAt: lastFullAt.load(ordering: .relaxed)
            )
        }
    }

    /// How much room writes have, cheap enough for every health check.
    public func room() throws -> StoreRoom {
        let usage = try read { self.usage($0.txn) }
        let lastFull = lastFullAt.load(ordering: .relaxed)
        return StoreRoom(
            usedFraction: usage.fraction,
            // Disposable writes stop short of the ceiling by up to their own size.
            disposableRefused: usage.fraction > options.disposableCeiling - 0.01,
            lastFullAt: lastFull == 0 ? nil : lastFull
        )
    }

    struct Usage {
        var usedPages: Int
        var pageSize: Int
        var mapPages: Int
        var fraction: Double { Double(usedPages) / Double(max(mapPages, 1)) }
    }

    /// Pages held by the trees themselves; freed pages waiting for reuse are not counted.
    func usage(_ txn: OpaquePointer) -> Usage {
        var used = 2
        var pageSize = 4096
        for dbi in [MDB_dbi(0), MDB_dbi(1)] + dbs.all {
            var stat = MDB_stat()
            if mdb_stat(txn, dbi, &stat) == 0 {
                used += Int(stat.ms_branch_pages + stat.ms_leaf_pages + stat.ms_overflow_pages)
                pageSize = Int(stat.ms_psize)
            }
        }
        var info = MDB_envinfo()
        mdb_env_info(env, &info)
        return Usage(usedPages: used, pageSize: pageSize, mapPages: info.me_mapsize / pageSize)
    }
}

/// A reset read transaction kept for reuse; LMDB allows any thread to renew it under MDB_NOTLS.
struct ReaderHandle: @unchecked Sendable {
    let txn: OpaquePointer
}

public struct StoreRoom: Sendable {
    /// The share of the map that the stored trees use.
    public var usedFraction: Double
    /// Within 1% of the ceiling for disposable writes: in effect, only state writes are taken.
    public var disposableRefused: Bool
    /// When a write of this process last failed for want of room (ms since the epoch).
    public var lastFullAt: UInt64?
}

public struct StoreStats: Sendable, Codable {
    public var entries: Int
    public var leases: Int
    public var usedBytes: Int
    public var mapBytes: Int
    public var readers: Int
    public var maxReaders: Int
    /// The part of the map that only state writes may use.
    public var reserveBytes: Int
    /// When a write of this process last failed for want of room (ms since the epoch), or 0.
    public var lastFullAt: UInt64

    /// Disposable writes are refused: the pages in use reach into the reserve.
    public var isInReserve: Bool { usedBytes > mapBytes - reserveBytes }
}

struct Databases: Sendable {
    var data: MDB_dbi
    /// expiresAt (big-endian) ‖ key, for entries with a time-to-live.
    var expiry: MDB_dbi
    /// writtenAt (big-endian) ‖ key, for entries with a time-to-live.
    var age: MDB_dbi
    var leases: MDB_dbi

    var all: [MDB_dbi] { [data, expiry, age, leases] }

    static func open(_ env: OpaquePointer) throws(StoreError) -> Databases {
        do {
            return try withWriteTransaction(begin: { () throws(StoreError) -> OpaquePointer in
                var txn: OpaquePointer?
                try check(mdb_txn_begin(env, nil, 0, &txn), "mdb_txn_begin")
                return txn!
            }) { txn in
                func dbi(_ name: String) throws(StoreError) -> MDB_dbi {
                    var handle = MDB_dbi()
                    try check(mdb_dbi_open(txn, name, UInt32(MDB_CREATE), &handle), "mdb_dbi_open \(name)")
                    return handle
                }
                return Databases(data: try dbi("data"), expiry: try dbi("expiry"), age: try dbi("age"), leases: try dbi("leases"))
            }
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(code: EIO, operation: "open databases: \(error)")
        }
    }
}

/// Begins a write transaction, runs `body` in it and commits it: the one place where a write
/// transaction ends. `mdb_txn_commit` frees the transaction whatever its result (a failed
/// commit, MAP_FULL for one, has already aborted it), so after it the handle is never touched;
/// only a `body` that throws leads to `mdb_txn_abort`.
func withWriteTransaction<T>(begin: () throws(StoreError) -> OpaquePointer, _ body: (OpaquePointer) throws -> T) throws -> T {
    let txn = try begin()
    let result: T
    do {
        result = try body(txn)
    } catch {
        mdb_txn_abort(txn)
        throw error
    }
    try check(mdb_txn_commit(txn), "mdb_txn_commit")
    return result
}
