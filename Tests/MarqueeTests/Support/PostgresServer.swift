import Foundation

/// A real PostgreSQL 15 (Debian's binaries) started for one test: its own cluster in a
/// temporary directory, run as an unprivileged user because postgres refuses root, listening on
/// a unix socket in that directory (and on `listenAddress`:`port` when asked), fsync on.
/// Stopped by pid in the owner's `defer`, and by deinit if left running.
final class PostgresServer: @unchecked Sendable {
    static let binaries = "/usr/lib/postgresql/15/bin"
    /// The account the cluster runs as: Debian's own `postgres` when the package made it, else `nobody`.
    static let user: String = {
        (try? Command.output("/usr/bin/id", ["-u", "postgres"])) != nil ? "postgres" : "nobody"
    }()
    /// setpriv's arguments that drop to `user` (its own group by number: `nobody`'s is `nogroup`).
    static let dropPrivileges: [String] = {
        let group = (try? Command.output("/usr/bin/id", ["-g", user])) ?? "65534"
        return ["--reuid=\(user)", "--regid=\(group)", "--init-groups", "--"]
    }()

    let directory: URL
    let port: Int
    let listenAddress: String?
    var socketDirectory: String { directory.path }
    private(set) var process: ChildProcess?
    private var generation = 0

    /// A libpq URI for the cluster's `postgres` database as its superuser `marquee`.
    var url: String { "postgresql://marquee@/postgres?host=\(socketDirectory)&port=\(port)" }
    /// The same over TCP, when `listenAddress` was given.
    var tcpURL: String? { listenAddress.map { "postgresql://marquee@\($0):\(port)/postgres" } }

    init(_ label: String, listenAddress: String? = nil, port: Int = TestPaths.freePort()) throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binaries + "/postgres") else {
            throw StackError("PostgreSQL 15 is not installed (\(Self.binaries)/postgres); deploy/test installs postgresql-15")
        }
        // Short: the socket path (directory + /.s.PGSQL.port) must fit in 107 bytes.
        directory = URL(fileURLWithPath: "/tmp").appendingPathComponent("mpg-\(label.prefix(12))-\(UUID().uuidString.prefix(6))")
        self.port = port
        self.listenAddress = listenAddress
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Command.output("/bin/cp", ["-a", Self.template + "/data", directory.path + "/data"])
        try Command.output("/bin/chown", ["-R", "\(Self.user):", directory.path])
        do { try start() } catch {
            stop()
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
    }

    /// One initdb per test process, copied for every server: initdb costs seconds, a copy little.
    private static let template: String = {
        let path = "/tmp/mpg-template-\(getpid())"
        try? FileManager.default.removeItem(atPath: path)
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        do {
            try Command.output("/bin/chown", ["\(user):", path])
            // --no-sync only skips initdb's own flush of the template; the servers run with fsync on.
            try Command.output("/usr/bin/setpriv", dropPrivileges + [binaries + "/initdb", "-D", path + "/data", "-U", "marquee",
                                              "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"])
        } catch {
            fatalError("initdb failed: \(error)")
        }
        templateToRemove = path
        atexit { if let path = PostgresServer.templateToRemove { try? FileManager.default.removeItem(atPath: path) } }
        return path
    }()

    nonisolated(unsafe) private static var templateToRemove: String?

    /// Starts (or restarts, after `stop`) the server on the same data, port and socket.
    func start() throws {
        generation += 1
        let server = try ChildProcess(
            "postgres-\(generation)", executable: "/usr/bin/setpriv",
            arguments: Self.dropPrivileges + [
                        Self.binaries + "/postgres", "-D", directory.path + "/data", "-k", socketDirectory,
                        "-p", String(port), "-c", "listen_addresses=\(listenAddress ?? "")",
                        "-c", "fsync=on", "-c", "synchronous_commit=on", "-c", "max_connections=300",
                        "-c", "shared_buffers=64MB", "-c", "logging_collector=off"],
            logDirectory: directory
        )
        process = server
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if server.log.contains("database system is ready to accept connections") { return }
            guard server.isRunning else { throw StackError("postgres exited: \(server.log)") }
            usleep(50_000)
        }
        throw StackError("postgres not ready within 60 s: \(server.log)")
    }

    /// Fast shutdown (SIGINT: sessions are ended, not waited for), SIGKILL if it lingers.
    func stop() {
        guard let process, process.isRunning else { return }
        process.signal(SIGINT)
        if process.waitForExit(timeout: .seconds(20)) == nil {
            process.signal(SIGKILL)
            _ = process.waitForExit(timeout: .seconds(5))
        }
    }

    /// Stops the server and removes its data.
    func remove() {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Runs SQL through psql as the superuser and returns its unaligned output.
    @discardableResult
    func psql(_ sql: String) throws -> String {
        try Command.output(Self.binaries + "/psql", ["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql])
    }

    deinit { stop() }

}
