import ArgumentParser
import Foundation
import Marquee

struct MoviesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "movies",
        abstract: "Look at the Studio Ghibli catalogue the workers keep in the store.",
        subcommands: [Status.self]
    )

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Refreshes (succeeded, failed, last error, since when stale), the leader's pid and the catalogue's size."
        )
        @OptionGroup var options: StoreCommand.Options

        func run() throws {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            let status = MoviesFeature.poolStatus(store: try options.open())
            print(String(decoding: try encoder.encode(status), as: UTF8.self))
        }
    }
}
