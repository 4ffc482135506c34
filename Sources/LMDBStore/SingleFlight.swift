#if canImport(Glibc)
import Glibc
#endif

/// What `Store.fetch` answered from.
public struct Fetched: Sendable {
    public enum Source: String, Sendable {
        /// A fresh entry was already stored.
        case hit
        /// This call computed the value.
        case computed
        /// Another process computed it while this call waited.
        case waited
        /// Another process is computing it; this is the expired entry.
        case stale
    }

    public var entry: StoreEntry
    public var source: Source
}

/// The process that computed the value failed; `payload` is what it chose to tell waiters.
public struct SingleFlightFailure: Error, Sendable {
    public var payload: [UInt8]
}

/// No value appeared within the wait.
public struct SingleFlightTimeout: Error, Sendable {}

extension Store {
    /// Answers the entry under `key`, computing it at most once pool-wide when it is missing
    /// or expired. Exactly one caller, in any process, runs `compute`; the others get the
    /// expired entry at once when there is one, or wait up to `wait` for the new value.
    ///
    /// `compute` returns the value and its time-to-live. When it throws, callers already
    /// waiting receive `SingleFlightFailure` with `failurePayload(error)` and later callers
    /// try again.
    public func fetch(
        _ key: String,
        wait: Duration,
        failurePayload: (any Error) -> [UInt8] = { _ in [] },
        compute: () throws -> (value: [UInt8], ttl: Duration)
    ) throws -> Fetched {
        let started = StoreClock.nowMillis()
        var entry = try self.entry(key)
        if let entry, !entry.isExpired() { return Fetched(entry: entry, source: .hit) }

        let leaseName = "fill/\(key)"
        let owner = "\(Lease.processOwner)/\(UInt64.random(in: 1...UInt64.max))"
        let deadline = started + wait.milliseconds
        var pause: UInt32 = 2_000
        var waited = false
        while true {
            let lease = try self.lease(leaseName)
            let now = StoreClock.nowMillis()
            // Strictly after: a caller that started in the failure's millisecond may have come after it.
            if let lease, lease.state == .failed, lease.changedAt > started, lease.isLive(at: now) {
                throw SingleFlightFailure(payload: lease.payload)
            }
            if lease == nil || lease!.state == .failed || !lease!.isLive(at: now) {
                // A state write: a fill's lease lives no longer than the fill and the sweep, and
                // without it a crowded store could not even answer unstored.
                let outcome = try write(.state) { txn -> (lead: Bool, entry: StoreEntry?) in
                    let current = try txn.entry(key)
                    if let current, !current.isExpired(at: txn.now) { return (false, current) }
                    return (try txn.acquireLease(leaseName, owner: owner, ttl: wait + .seconds(1)), current)
                }
                if let fresh = outcome.entry, !fresh.isExpired() {
                    return Fetched(entry: fresh, source: waited ? .waited : .hit)
                }
                if outcome.lead {
                    return try lead(key: key, leaseName: leaseName, owner: owner, failurePayload: failurePayload, compute: compute)
                }
                entry = outcome.entry
            }
            if let entry { return Fetched(entry: entry, source: .stale) }
            if now >= deadline { throw SingleFlightTimeout() }
            usleep(pause)
            pause = min(pause * 2, 20_000)
            waited = true
            if let fresh = try self.entry(key), !fresh.isExpired() {
                return Fetched(entry: fresh, source: .waited)
            }
        }
    }

    /// Whether a caller, in any process, is computing `key` now: a `fetch` of it would wait for
    /// that caller's answer rather than compute it again.
    public func isFilling(_ key: String) throws -> Bool {
        guard let lease = try lease("fill/\(key)") else { return false }
        return lease.state != .failed && lease.isLive(at: StoreClock.nowMillis())
    }

    private func lead(
        key: String,
        leaseName: String,
        owner: String,
        failurePayload: (any Error) -> [UInt8],
        compute: () throws -> (value: [UInt8], ttl: Duration)
    ) throws -> Fetched {
        let computed: (value: [UInt8], ttl: Duration)
        do {
            computed = try compute()
        } catch {
            let payload = failurePayload(error)
            // Ending a claim is a state write, so that a crowded store never keeps it held; the
            // failure stays readable for `keepFor`, then the lease sweep deletes it.
            if (try? write(.state) { try $0.failLease(leaseName, owner: owner, payload: payload, keepFor: .seconds(2)) }) == nil {
                _ = try? write(.state) { try $0.releaseLease(leaseName, owner: owner) }
            }
            throw error
        }
        do {
            let stored = try write(.disposable) { txn -> StoreEntry in
                try txn.put(key, computed.value, ttl: computed.ttl)
                try txn.releaseLease(leaseName, owner: owner)
                return try txn.entry(key)!
            }
            return Fetched(entry: stored, source: .computed)
        } catch {
            _ = try? write(.state) { try $0.releaseLease(leaseName, owner: owner) }
            // A cache with no room still answers: the value serves this caller unstored.
            guard let full = error as? StoreError, full.isFull else { throw error }
            let now = StoreClock.nowMillis()
            return Fetched(entry: StoreEntry(value: computed.value, writtenAt: now, expiresAt: now + max(1, computed.ttl.milliseconds)),
                           source: .computed)
        }
    }
}
