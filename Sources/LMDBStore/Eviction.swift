import CLMDB

extension Store {
    /// Deletes cache entries until the pages in use fall below `options.evictDownTo`:
    /// expired entries first, then the oldest written. Entries without a time-to-live are
    /// state, not cache, and are never evicted. Returns how many entries went.
    @discardableResult
    public func evict(force: Bool = false) throws -> Int {
        let txn = try beginTransaction(flags: 0)
        let transaction = StoreTransaction(txn: txn, dbs: dbs, writable: true)
        var removed = 0
        do {
            // A forced pass after MDB_MAP_FULL frees a batch even when the page count looks fine:
            // the map can fill with pages that old readers still pin.
            var minimum = force ? 64 : 0
            while removed < minimum || usage(txn).fraction > options.evictDownTo {
                guard let key = try nextVictim(transaction) else { break }
                _ = try transaction.delete(String(decoding: key, as: UTF8.self))
                removed += 1
                if removed >= 100_000 { minimum = 0; break }
            }
            try check(mdb_txn_commit(txn), "mdb_txn_commit")
        } catch {
            mdb_txn_abort(txn)
            throw error
        }
        return removed
    }

    private func nextVictim(_ transaction: StoreTransaction) throws -> [UInt8]? {
        if let soonest = try transaction.firstIndexed(dbs.expiry), soonest.time <= transaction.now {
            return soonest.key
        }
        return try transaction.firstIndexed(dbs.age)?.key
    }
}
