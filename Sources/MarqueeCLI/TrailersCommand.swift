import ArgumentParser
import Foundation
import LMDBStore
import Marquee

struct TrailersCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trailers",
        abstract: "Look into the trailers feature: stored answers and the content event queue.",
        subcommands: [Show.self, Parked.self, Requeue.self]
    )

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Normalise a film URL as the routes do, and print its store key and stored answer."
        )
        @OptionGroup var options: StoreCommand.Options
        @Argument(help: "A Viaplay film URL.") var url: String

        func run() throws {
            let environment = ProcessInfo.processInfo.environment
            let reader = try SettingsReader.current(processEnvironment: environment)
            let settings = try TrailersSettings(reader, threads: Settings(reader).threads)
            let film: FilmURL
            do {
                film = try FilmURL.parse(url, policy: settings.policy)
            } catch {
                print("refused: \(error.reason)")
                throw ExitCode(1)
            }
            print("url\t\(film.normalised)")
            print("key\t\(film.storeKey)")
            guard let entry = try options.open().entry(film.storeKey) else {
                print("not stored")
                return
            }
            StoreCommand.describe(film.storeKey, entry)
            print(String(decoding: entry.value, as: UTF8.self))
        }
    }

    /// The queue the workers use: the cluster's in the database when MARQUEE_DATABASE_URL is
    /// set, else the embedded store's in --store-dir.
    static func queue(_ options: StoreCommand.Options) throws -> any ContentEventQueue {
        if let settings = try DatabaseSettings(SettingsReader.current()) {
            return PostgresContentEventQueue(client: Database(settings).client)
        }
        return LMDBContentEventQueue(store: try options.open())
    }

    struct Parked: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the parked content events, one JSON object a line (from the database when MARQUEE_DATABASE_URL is set).")
        @OptionGroup var options: StoreCommand.Options
        @Option(help: "At most this many.") var limit: Int = 100

        func run() throws {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            for event in try TrailersCommand.queue(options).parked(limit: limit) {
                print(String(decoding: try encoder.encode(event), as: UTF8.self))
            }
        }
    }

    struct Requeue: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Queue every parked content event again, with fresh attempts (in the database when MARQUEE_DATABASE_URL is set).")
        @OptionGroup var options: StoreCommand.Options

        func run() throws {
            let moved = try TrailersCommand.queue(options).requeueParked()
            print("requeued \(moved) parked events")
        }
    }
}
