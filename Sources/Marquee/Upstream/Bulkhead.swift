import Synchronization

/// Bounds how many request threads of one worker may wait on an upstream at once, so that a
/// hanging service cannot take the threads that cached and other routes need.
public final class Bulkhead: Sendable {
    public let limit: Int
    private let inUse = Atomic<Int>(0)
    private let refused = Atomic<Int>(0)

    public init(limit: Int) {
        self.limit = limit
    }

    public func run<T>(_ body: () throws -> T) throws -> T {
        let taken = inUse.wrappingAdd(1, ordering: .acquiringAndReleasing).newValue
        defer { inUse.subtract(1, ordering: .releasing) }
        guard taken <= limit else {
            refused.add(1, ordering: .relaxed)
            throw UpstreamError.overloaded
        }
        return try body()
    }

    public var status: JSONValue {
        .object(["limit": .int(limit), "inUse": .int(inUse.load(ordering: .relaxed)), "refused": .int(refused.load(ordering: .relaxed))])
    }
}
