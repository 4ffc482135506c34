import ArgumentParser
import FastCGI
import Foundation
import LMDBStore
import Marquee

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run one FastCGI worker.",
        discussion: """
            Without --listen the worker accepts on the socket systemd passed (LISTEN_FDS), \
            or on fd 0 when it is a listening socket. Settings come from MARQUEE_* variables.
            """
    )

    @Option(help: "A unix socket path or 127.0.0.1:PORT to listen on.")
    var listen: String?

    @Option(help: "Request threads; overrides MARQUEE_THREADS.")
    var threads: Int?

    func run() throws {
        // Before any thread exists, so that every thread inherits the mask.
        ProcessSignals.block()
        var environment = ProcessInfo.processInfo.environment
        if let threads { environment["MARQUEE_THREADS"] = String(threads) }
        let settings: Settings
        do {
            settings = try Settings(SettingsReader.current(processEnvironment: environment), stateDirectory: environment["STATE_DIRECTORY"])
        } catch {
            Diagnostics.fail("\(error)", status: .configuration)
        }
        let listener: FastCGIListener
        do {
            if let listen {
                listener = try FastCGIListener.bind(listen)
            } else if let inherited = FastCGIListener.inherited() {
                listener = inherited
            } else {
                Diagnostics.fail("no socket to accept on: pass --listen, or start under systemd or `marquee pool`", status: .configuration)
            }
        } catch {
            Diagnostics.fail("\(error)", status: .failure)
        }
        let store: Store
        do {
            store = try Store.open(settings.storeOptions)
        } catch {
            Diagnostics.fail("cannot open the store in \(settings.storeDirectory): \(error)", status: .failure)
        }
        var database: Database?
        if let databaseSettings = settings.database {
            let opened = Database(databaseSettings)
            do {
                if let refusal = opened.refusal(try opened.checkSchema()) { Diagnostics.fail(refusal, status: .failure) }
                opened.schemaVerified()
            } catch {
                // Cached reads need no database: serve them, and check the schema once it answers.
                FileHandle.standardError.write(Data("marquee: the database is unavailable at start, serving cached reads until it answers: \(error)\n".utf8))
            }
            database = opened
        }
        let services = Services(store: store, settings: settings, database: database)
        let features: [any Feature]
        do {
            features = try FeatureSet.make(services: services)
        } catch {
            Diagnostics.fail("\(error)", status: .configuration)
        }
        let worker = Worker(services: services, listener: listener, features: features)
        throw ExitCode(worker.run(listenerOrigin: listener.origin))
    }
}

enum Diagnostics {
    enum Status: Int32 {
        case failure = 1
        /// EX_CONFIG: the unit's RestartPreventExitStatus keeps systemd from retrying a bad config.
        case configuration = 78
    }

    static func fail(_ message: String, status: Status) -> Never {
        FileHandle.standardError.write(Data("marquee: \(message)\n".utf8))
        exit(status.rawValue)
    }
}
