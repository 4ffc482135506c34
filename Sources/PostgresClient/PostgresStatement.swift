/// A statement prepared once per connection under `name`, and again after every reconnect.
/// Parameters are `$1`, `$2`, … sent as text.
public struct PostgresStatement: Sendable, Hashable {
    public let name: String
    public let sql: String

    public init(_ name: String, _ sql: String) {
        self.name = name
        self.sql = sql
    }
}
