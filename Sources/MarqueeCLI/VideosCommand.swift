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
            discussion: "Every video is checked first; one problem anywhere and nothing is stored. The workers see the videos at once."
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
                videos = try VideoCatalogue.parseImport(data)
            } catch {
                Diagnostics.fail("\(file): \(error)", status: .failure)
            }
            let created = try VideoCatalogue(store: options.open()).save(videos)
            print("imported \(videos.count) video\(videos.count == 1 ? "" : "s") from \(file): \(created) new, \(videos.count - created) replaced")
        }
    }
}
