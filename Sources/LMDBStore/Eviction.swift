import CLMDB

extension Store {
    /// Deletes cache entries until the pages in use fall below `options.evictDownTo`:
    /// leases no one holds any more, then expired entries, then the oldest written. Entries
    /// without a time-to-live are state, not cache, and are never evicted. Returns how many
    /// entries and leases went.
    ///
    /// It commits in batches, smaller ones after a batch found the map full: a delete copies
    /// the pages it touches, and a map full to the last page has room for a few of them only.
    @discardableResult
    public func evict(force: Bool = false) throws -> Int {
        // A forced pass after MDB_MAP_FULL frees some entries even when the page count looks
        // fine: the map can fill with pages that old readers still pin.
        let minimum = force ? 64 : 0
        var removed = 0
        var batch = 256
        while removed < 100_000 {
            do {
                let (count, more) = try evictBatch(limit: batch, minimum: minimum - removed)
                removed += count
                if !more { break }
            } catch let error as StoreError where error.isMapFull && batch > 1 {
                batch = max(1, batch / 8)
            }
        }
        if removed > 0 { metrics.evictions.increment(by: removed) }
        return removed
    }

    /// One transaction of `evict`: answers how many went and whether to go on.
    private func evictBatch(limit: Int, minimum: Int) throws -> (removed: Int, more: Bool) {
        try withWriteTransaction(begin: { () throws(StoreError) in try beginTransaction(flags: 0) }) { txn in
            let transaction = StoreTransaction(txn: txn, dbs: dbs, writable: true)
            var removed = try transaction.sweepLeases(limit: limit)
            while removed < limit && (removed < minimum || usage(txn).fraction > options.evictDownTo) {
                guard let key = try nextVictim(transaction) else { return (removed, false) }
                _ = try transaction.delete(String(decoding: key, as: UTF8.self))
                removed += 1
            }
            return (removed, removed >= limit)
        }
    }

    private func nextVictim(_ transaction: StoreTransaction) throws -> [UInt8]? {
        if let soonest = try transaction.firstIndexed(dbs.expiry), soonest.time <= transaction.now {
            return soonest.key
        }
        return try transaction.firstIndexed(dbs.age)?.key
    }
}
