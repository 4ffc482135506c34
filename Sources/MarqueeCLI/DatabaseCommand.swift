import ArgumentParser
import Foundation
import Marquee

struct DatabaseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "db",
        abstract: "The PostgreSQL system of record named by MARQUEE_DATABASE_URL.",
        subcommands: [Migrate.self, Status.self, ImportStore.self]
    )

    static func open() throws -> Database {
        let reader = try SettingsReader.current()
        guard let settings = try DatabaseSettings(reader) else {
            FileHandle.standardError.write(Data("marquee: MARQUEE_DATABASE_URL is not set; without it every record stays in the embedded store\n".utf8))
            throw ExitCode(78)
        }
        return Database(settings)
    }

    struct Migrate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Apply the schema migrations this marquee ships that the database lacks.",
            discussion: """
                Safe to run from several processes or hosts at once: an advisory lock lets one apply \
                each migration, in one transaction with its record in schema_migrations; the others wait \
                and find nothing left. Exits 1 when the database cannot be reached.
                """
        )

        func run() throws {
            let database = try DatabaseCommand.open()
            let applied: [String]
            do {
                applied = try database.migrator.migrate().map { "\($0.version)_\($0.name)" }
            } catch {
                FileHandle.standardError.write(Data("marquee: cannot migrate \(database.redactedURL): \(error)\n".utf8))
                throw ExitCode(1)
            }
            if applied.isEmpty {
                print("schema version \(database.latestVersion): up to date")
            } else {
                for name in applied { print("applied \(name)") }
                print("schema version \(database.latestVersion)")
            }
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the database's schema version and the one this marquee knows.",
            discussion: "Exits 0 when they match, 3 when the database needs `marquee db migrate` or a newer marquee, 1 when it cannot be reached."
        )

        func run() throws {
            let database = try DatabaseCommand.open()
            let check: Database.SchemaCheck
            let version: Int
            do {
                version = try database.migrator.currentVersion()
                check = try database.checkSchema()
            } catch {
                FileHandle.standardError.write(Data("marquee: cannot reach \(database.redactedURL): \(error)\n".utf8))
                throw ExitCode(1)
            }
            print("database \(database.redactedURL)")
            print("schema version \(version), this marquee knows \(database.latestVersion)")
            if let refusal = database.refusal(check) {
                print(refusal)
                throw ExitCode(3)
            }
        }
    }

    struct ImportStore: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import-store",
            abstract: "Copy an embedded store's accounts, streams, videos, visits and content events into the database.",
            discussion: """
                Reads the LMDB store in --store-dir (default MARQUEE_STORE_DIR) and copies every user \
                with its streams, keeping creation times and order. Users the database already holds \
                are skipped, so running it again copies nothing; it prints what it copied and skipped. \
                Videos are copied likewise, and each video's visit count with its kept visits unless the \
                database counts that video already. Visits still in the outbox are moved: they leave the \
                store as the database takes them. Queued and parked content events are copied with their \
                attempts, times and last errors; those the database holds already are skipped. Run \
                `marquee db migrate` first.
                """
        )
        @OptionGroup var options: StoreCommand.Options

        func run() throws {
            let database = try DatabaseCommand.open()
            let store = try options.open()
            do {
                if let refusal = database.refusal(try database.checkSchema()) {
                    FileHandle.standardError.write(Data("marquee: \(refusal)\n".utf8))
                    throw ExitCode(1)
                }
                for line in try StoreImport.run(store: store, database: database).lines { print(line) }
            } catch let exit as ExitCode {
                throw exit
            } catch {
                FileHandle.standardError.write(Data("marquee: cannot import into \(database.redactedURL): \(error)\n".utf8))
                throw ExitCode(1)
            }
        }
    }
}
