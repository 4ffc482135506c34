import ArgumentParser
import Foundation
import Marquee

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Inspect the configuration.",
        subcommands: [Check.self]
    )

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate the MARQUEE_* settings (and MARQUEE_ENV_FILE) as a worker would at start."
        )

        func run() throws {
            let environment = ProcessInfo.processInfo.environment
            do {
                let settings = try Settings(SettingsReader.current(processEnvironment: environment), stateDirectory: environment["STATE_DIRECTORY"])
                try FeatureSet.validate(settings.reader)
                print("configuration ok: store \(settings.storeDirectory) (\(settings.storeMaxBytes >> 20) MiB, sync \(settings.storeSync.rawValue)), \(settings.threads) threads")
            } catch {
                print("marquee: \(error)")
                throw ExitCode(78)
            }
        }
    }
}
