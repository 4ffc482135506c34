import CLMDB

/// An LMDB failure, with the call that failed and LMDB's own message.
public struct StoreError: Error, CustomStringConvertible, Equatable {
    public let code: Int32
    public let operation: String

    public init(code: Int32, operation: String) {
        self.code = code
        self.operation = operation
    }

    /// Marquee's own code: a disposable write would have used the reserve kept for state.
    public static let reserveCode: Int32 = -30_000

    public var isMapFull: Bool { code == MDB_MAP_FULL }
    /// The map is full, or a disposable write was refused the reserve: the write was not done,
    /// and the store takes writes again once room is freed.
    public var isFull: Bool { code == MDB_MAP_FULL || code == Self.reserveCode }
    public var isMapResized: Bool { code == MDB_MAP_RESIZED }

    public var description: String {
        if code == Self.reserveCode { return "\(operation): the rest of the map is kept for state" }
        return "\(operation): \(String(cString: mdb_strerror(code)))"
    }
}

@inline(__always)
func check(_ code: Int32, _ operation: @autoclosure () -> String) throws(StoreError) {
    if code != 0 { throw StoreError(code: code, operation: operation()) }
}
