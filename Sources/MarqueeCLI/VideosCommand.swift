import ArgumentParser
import Foundation
import Marquee

struct VideosCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "videos",
        abstract: "Manage the video catalogue.",
        subcommands: [Import.self]
    )

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create or replace the videos of a JSON file (a list of videos, or one video).",
            discussion: """
                Every video is checked first; one problem anywhere and nothing is stored. The workers see the videos at once. \
                With MARQUEE_DATABASE_URL the videos go into the database, which every host reads.
                """
        )
        @OptionGroup var options: StoreCommand.Options
        @Argument(help: "The JSON file.") var file: String

        func run() throws {
            let data: Data
            do {
                data = try Data(contentsOf: URL(fileURLWithPath: file))
            } catch {
                Diagnostics.fail("cannot read \(file)", status: .failure)
            }
            let videos: [Video]
            do {
                videos = try VideoImport.parse(data)
            } catch {
                Diagnostics.fail("\(file): \(error)", status: .failure)
            }
            let database: Database?
            do {
                database = try DatabaseSettings(SettingsReader.current()).map(Database.init)
            } catch {
                Diagnostics.fail("\(error)", status: .failure)
            }
            let created = try VideosFeature.catalogue(options.open(), database: database).save(videos)
            print("imported \(videos.count) video\(videos.count == 1 ? "" : "s") from \(file): \(created) new, \(videos.count - created) replaced")
        }
    }
}
