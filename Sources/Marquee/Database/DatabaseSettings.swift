import Foundation
import PostgresClient

/// MARQUEE_DATABASE_*: where the records of truth live when PostgreSQL is configured. Absent
/// MARQUEE_DATABASE_URL, everything stays in the embedded store.
public struct DatabaseSettings: Sendable {
    public var configuration: PostgresConfiguration

    /// Nil when MARQUEE_DATABASE_URL is not set.
    public init?(_ reader: SettingsReader) throws(SettingsError) {
        guard let url = reader.string("MARQUEE_DATABASE_URL") else { return nil }
        var password: String?
        if let file = reader.string("MARQUEE_DATABASE_PASSWORD_FILE") {
            do {
                password = try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .newlines)
            } catch {
                throw SettingsError(variable: "MARQUEE_DATABASE_PASSWORD_FILE", problem: "cannot read \(file)")
            }
        } else {
            password = reader.string("MARQUEE_DATABASE_PASSWORD")
        }
        configuration = PostgresConfiguration(
            url: url, password: password,
            statementTimeout: try reader.seconds("MARQUEE_DATABASE_STATEMENT_TIMEOUT", default: .seconds(2), range: 0.05...600),
            connectTimeout: try reader.seconds("MARQUEE_DATABASE_CONNECT_TIMEOUT", default: .seconds(2), range: 1...60)
        )
        do {
            _ = try configuration.connectionParameters()
        } catch {
            throw SettingsError(variable: "MARQUEE_DATABASE_URL", problem: "not a libpq connection URI (\(PostgresConfiguration.redact(url)))")
        }
    }
}
