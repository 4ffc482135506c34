import ArgumentParser
import Foundation
import Marquee

struct UsersCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "users",
        abstract: "Manage user accounts in the shared store.",
        subcommands: [Import.self]
    )

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import the earlier user-stream service's JSON database.",
            discussion: """
                Adds every user of FILE ({"Users": {"<id>": {"Name", "Subscription", ...}}}) that the \
                store does not hold yet, and prints one line per user: imported, or skipped and why. \
                Users already present are skipped, so running it again changes nothing. Each user's active \
                streams are granted with a normal lease (MARQUEE_STREAM_LEASE_SECONDS, within the plan's \
                limit): a player that keeps renewing keeps its slot, one that is gone frees it when the \
                lease ends. Safe while the workers run. Exits 1 when FILE cannot be read.
                """
        )
        @OptionGroup var options: StoreCommand.Options
        @Argument(help: "The earlier service's database, e.g. Database/database.json.") var file: String

        func run() throws {
            let store = try options.open()
            let report: LegacyImport.Report
            do {
                let reader = try SettingsReader.current()
                let database = try DatabaseSettings(reader).map(Database.init)
                report = try LegacyImport.run(file: file, store: store, database: database, settings: reader)
            } catch let error as LegacyImport.FileError {
                FileHandle.standardError.write(Data("marquee: \(error)\n".utf8))
                throw ExitCode(1)
            } catch let error as SettingsError {
                FileHandle.standardError.write(Data("marquee: \(error)\n".utf8))
                throw ExitCode(1)
            }
            for line in report.lines { print(line) }
        }
    }
}
