import CLMDB

/// An LMDB failure, with the call that failed and LMDB's own message.
public struct StoreError: Error, CustomStringConvertible, Equatable {
    public let code: Int32
    public let operation: String

    public init(code: Int32, operation: String) {
        self.code = code
        self.operation = operation
    }

    public var isMapFull: Bool { code == MDB_MAP_FULL }
    public var isMapResized: Bool { code == MDB_MAP_RESIZED }

    public var description: String {
        "\(operation): \(String(cString: mdb_strerror(code)))"
    }
}

@inline(__always)
func check(_ code: Int32, _ operation: @autoclosure () -> String) throws(StoreError) {
    if code != 0 { throw StoreError(code: code, operation: operation()) }
}
