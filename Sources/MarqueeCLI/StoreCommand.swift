import ArgumentParser
import Foundation
import LMDBStore
import Marquee

struct StoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store",
        abstract: "Look into the shared store the workers use.",
        subcommands: [Stats.self, Get.self, Scan.self, Purge.self]
    )

    struct Options: ParsableArguments {
        @Option(help: "The store directory; defaults to MARQUEE_STORE_DIR as the workers see it.")
        var storeDir: String?

        func open() throws -> Store {
            let environment = ProcessInfo.processInfo.environment
            var settings = try Settings(SettingsReader.current(processEnvironment: environment), stateDirectory: environment["STATE_DIRECTORY"])
            if let storeDir { settings.storeDirectory = storeDir }
            return try Store.open(settings.storeOptions)
        }
    }

    struct Stats: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Entries, bytes in use, map size and reader slots.")
        @OptionGroup var options: Options

        func run() throws {
            let store = try options.open()
            let cleared = store.clearStaleReaders()
            let stats = try store.stats()
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(stats), as: UTF8.self))
            if cleared > 0 { print("cleared \(cleared) reader slots left by dead processes") }
        }
    }

    struct Get: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print one entry with its times.")
        @OptionGroup var options: Options
        @Argument(help: "The key.") var key: String

        func run() throws {
            guard let entry = try options.open().entry(key) else {
                print("no entry \(key)")
                throw ExitCode(1)
            }
            StoreCommand.describe(key, entry)
            print(String(decoding: entry.value, as: UTF8.self))
        }
    }

    struct Scan: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List keys under a prefix.")
        @OptionGroup var options: Options
        @Argument(help: "The key prefix.") var prefix: String = ""
        @Option(help: "At most this many keys.") var limit: Int = 100

        func run() throws {
            for (key, entry) in try options.open().scan(prefix: prefix, limit: limit) {
                StoreCommand.describe(key, entry)
            }
        }
    }

    struct Purge: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete every entry under a prefix (a cache flush).")
        @OptionGroup var options: Options
        @Argument(help: "The key prefix; required, so that a typo cannot empty the store.") var prefix: String

        func run() throws {
            let removed = try options.open().purge(prefix: prefix)
            print("purged \(removed) entries under '\(prefix)'")
        }
    }

    static func describe(_ key: String, _ entry: StoreEntry) {
        let written = Date(timeIntervalSince1970: Double(entry.writtenAt) / 1000)
        let expires = entry.expiresAt == 0 ? "never" : Date(timeIntervalSince1970: Double(entry.expiresAt) / 1000).description
        let state = entry.isExpired() ? "expired" : "fresh"
        print("\(key)\t\(entry.value.count) bytes\twritten \(written)\texpires \(expires)\t\(state)")
    }
}
