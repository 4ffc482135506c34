import Foundation
import Logging
import NIOConcurrencyHelpers
import PostgresClient

/// The PostgreSQL system of record, when MARQUEE_DATABASE_URL names one: the client every
/// thread of this worker shares, and the schema this version of marquee knows.
public final class Database: Sendable {
    public let client: PostgresClient
    public let migrator: PostgresMigrator
    /// The last probe's problem, for health; nil while the database answers.
    private let probeProblem = NIOLockedValueBox<String?>(nil)

    /// One key for every marquee cluster: only `marquee db migrate` takes it.
    static let migrationLockKey: Int64 = 0x4D41_5251_5545_4501

    public init(_ settings: DatabaseSettings) {
        client = PostgresClient(configuration: settings.configuration)
        migrator = PostgresMigrator(client: client, migrations: Self.migrations, lockKey: Self.migrationLockKey)
    }

    /// The migrations shipped in Database/Migrations, `NNNN_name.sql`, in version order.
    public static let migrations: [PostgresMigration] = {
        guard let directory = Bundle.module.url(forResource: "Migrations", withExtension: nil),
              let files = try? FileManager.default.contentsOfDirectory(atPath: directory.path) else {
            preconditionFailure("Database/Migrations is missing from the resource bundle")
        }
        return files.filter { $0.hasSuffix(".sql") }.sorted().map { file in
            let stem = String(file.dropLast(4))
            guard let underscore = stem.firstIndex(of: "_"), let version = Int(stem[..<underscore]),
                  let sql = try? String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8) else {
                preconditionFailure("Database/Migrations/\(file) is not NNNN_name.sql or cannot be read")
            }
            return PostgresMigration(version: version, name: String(stem[stem.index(after: underscore)...]), sql: sql)
        }
    }()

    public var redactedURL: String { client.configuration.redactedURL }
    public var latestVersion: Int { migrator.latestVersion }

    public enum SchemaCheck: Sendable, Equatable {
        case current
        /// Migrations this version knows are not applied: `marquee db migrate`.
        case older(Int)
        /// A newer marquee migrated the database: this one must not write into it.
        case newer(Int)
    }

    public func checkSchema() throws -> SchemaCheck {
        let version = try migrator.currentVersion()
        if version == latestVersion { return .current }
        return version < latestVersion ? .older(version) : .newer(version)
    }

    /// One cheap statement, from a background thread once a second, so that health can say
    /// the database is down without asking it on the health request, and connections notice a
    /// restarted server before a request does.
    /// A worker that started while the database was down checks the schema on the first
    /// probe that reaches it, and exits as `marquee serve` would have at start.
    func probe(logger: Logger) {
        do {
            if !schemaChecked.withLockedValue({ $0 }) {
                let check = try checkSchema()
                if let refusal = refusal(check) {
                    logger.critical("\(refusal)")
                    LogOutput.shared.flushAll()
                    exit(1)
                }
                schemaChecked.withLockedValue { $0 = true }
            }
            try client.withConnection { connection in _ = try connection.run("SELECT 1") }
            probeProblem.withLockedValue { $0 = nil }
        } catch {
            probeProblem.withLockedValue { $0 = "\(error)" }
        }
    }

    private let schemaChecked = NIOLockedValueBox(false)

    /// Marks the schema as checked at start, so that the probe does not check it again.
    public func schemaVerified() {
        schemaChecked.withLockedValue { $0 = true }
    }

    /// The one line a worker logs before it refuses to serve, or nil for the schema it knows.
    public func refusal(_ check: SchemaCheck) -> String? {
        switch check {
        case .current:
            return nil
        case .older(let version):
            return "the database schema is at version \(version), this marquee needs \(latestVersion): run `marquee db migrate` (database \(redactedURL))"
        case .newer(let version):
            return "the database schema is at version \(version), newer than this marquee knows (\(latestVersion)): upgrade marquee before serving (database \(redactedURL))"
        }
    }

    /// Why the database is degraded, or nil when the last probe and the last statement passed.
    public var degradation: String? {
        if let problem = probeProblem.withLockedValue({ $0 }) { return "unavailable: \(problem)" }
        return client.lastFailure.map { "unavailable: \($0)" }
    }

}
