import Synchronization

/// Bounds what a slow upstream can take of one worker's request threads.
///
/// Two bounds: `limit` lookups may call an upstream at once, and `waitLimit` threads may wait
/// on an upstream at once, whether they call it or follow a lookup already in flight. The
/// threads above `waitLimit` are a reserve that upstream waits never take, so health and
/// cached routes still answer while an upstream hangs.
public final class Bulkhead: Sendable {
    public let limit: Int
    public let waitLimit: Int
    private let leading = Atomic<Int>(0)
    private let waiting = Atomic<Int>(0)
    private let refused = Atomic<Int>(0)

    public init(limit: Int, waitLimit: Int) {
        self.limit = limit
        self.waitLimit = max(limit, waitLimit)
    }

    /// Runs `body`, which waits on an upstream, unless every thread outside the reserve already does.
    public func wait<T>(_ body: () throws -> T) throws -> T {
        try take(waiting, limit: waitLimit, body)
    }

    /// Runs `body`, which calls an upstream, unless `limit` calls are already in flight.
    public func lead<T>(_ body: () throws -> T) throws -> T {
        try take(leading, limit: limit, body)
    }

    /// Refuses, as `lead` would, when every upstream slot is taken now. Racy by nature: a
    /// request it lets through may still be refused by `lead`.
    public func checkRoom() throws {
        guard leading.load(ordering: .acquiring) >= limit else { return }
        refused.add(1, ordering: .relaxed)
        throw UpstreamError.overloaded
    }

    private func take<T>(_ counter: borrowing Atomic<Int>, limit: Int, _ body: () throws -> T) throws -> T {
        let taken = counter.wrappingAdd(1, ordering: .acquiringAndReleasing).newValue
        defer { counter.subtract(1, ordering: .releasing) }
        guard taken <= limit else {
            refused.add(1, ordering: .relaxed)
            throw UpstreamError.overloaded
        }
        return try body()
    }

    public var status: JSONValue {
        .object([
            "limit": .int(limit), "inUse": .int(leading.load(ordering: .relaxed)),
            "waitLimit": .int(waitLimit), "waiting": .int(waiting.load(ordering: .relaxed)),
            "refused": .int(refused.load(ordering: .relaxed)),
        ])
    }
}
