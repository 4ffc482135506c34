import FastCGI
import Foundation
import Testing

/// A real nginx rendered from nginx/ by deploy/nginx-render, in front of real `marquee serve`
/// workers sharing one listening socket (as fd 0, the way `marquee pool` runs them), with a
/// real store directory. Everything lives in one temporary directory.
final class Stack: @unchecked Sendable {
    let directory: URL
    let port: Int
    let socketPath: String
    let client: HTTPClient
    /// Raw request targets from a chosen source address (curl), for path spellings URLSession would normalise.
    let raw: RawHTTP
    private(set) var workers: [ChildProcess] = []
    private var nginx: ChildProcess?
    private let listenerFd: Int32
    let workerEnvironment: [String: String]
    private var workerCount = 0
    /// The network namespace its processes run in (`ip netns exec`); nil: the test's own.
    let namespace: String?
    /// The PostgreSQL this stack started for `.postgres`; nil for the embedded store.
    let postgres: PostgresServer?

    static let secureLinkSecret = "marquee-test-secure-link"

    /// `rates: "bench"` moves nginx's rate limits out of the way; `"default"` keeps production's.
    /// `port` lets a test write nginx's own address into the workers' configuration beforehand.
    /// `namespace` runs nginx and the workers in that network namespace, nginx listening on
    /// `address` there: one host of a cluster on one machine.
    init(_ label: String, workers count: Int = 2, environment: [String: String] = [:], rates: String = "bench",
         renderArguments: [String] = [], port: Int = TestPaths.freePort(), storage: StorageMode = .embedded,
         address: String = "127.0.0.1", namespace: String? = nil) async throws {
        directory = TestPaths.temporaryDirectory(label)
        self.port = port
        self.namespace = namespace
        socketPath = directory.appendingPathComponent("marquee.sock").path
        client = HTTPClient(base: "http://\(address):\(port)")
        raw = RawHTTP(port: port)
        listenerFd = try FastCGIListener.bind(socketPath, mode: 0o660).fd
        var defaults = [
            "MARQUEE_STORE_DIR": directory.appendingPathComponent("store").path,
            "MARQUEE_STORE_MAX_MB": "256",
            "MARQUEE_THREADS": "4",
            "MARQUEE_TEST_ROUTES": "1",
            "MARQUEE_ADMIN_TOKEN": Stack.adminToken,
            // The movies loop calls its upstream from the start: no test may reach the internet,
            // so it gets a closed loopback port unless the test passes the fake upstream's URL.
            "MARQUEE_GHIBLI_BASE_URL": "http://127.0.0.1:9",
        ]
        if storage == .postgres {
            do {
                let server = try PostgresServer(label)
                postgres = server
                defaults["MARQUEE_DATABASE_URL"] = server.url
            } catch {
                close(listenerFd)
                throw error
            }
        } else {
            postgres = nil
        }
        defaults.merge(environment) { _, new in new }
        workerEnvironment = defaults
        do {
            if postgres != nil { try migrate() }
            for _ in 0..<count { _ = try startWorker() }
            nginx = try Self.startNginx(in: directory, port: port, socket: socketPath, rates: rates, extra: renderArguments,
                                        environment: defaults, address: address, namespace: namespace)
            try await waitUntilHealthy()
        } catch {
            stop()
            throw error
        }
    }

    static let adminToken = "test-admin-token-0123456789"

    /// `marquee db migrate` with the workers' settings, as an operator runs it before starting them.
    func migrate() throws {
        let migrate = try ChildProcess("db-migrate", executable: TestPaths.marquee, arguments: ["db", "migrate"],
                                       environment: workerEnvironment, logDirectory: directory)
        guard migrate.waitForExit(timeout: .seconds(60)) == 0 else { throw StackError("marquee db migrate failed: \(migrate.log)") }
    }

    /// Starts one more worker on the shared socket.
    @discardableResult
    func startWorker(extraEnvironment: [String: String] = [:]) throws -> ChildProcess {
        workerCount += 1
        let (executable, arguments) = Self.command(TestPaths.marquee, ["serve"], in: namespace)
        let worker = try ChildProcess(
            "worker-\(workerCount)", executable: executable, arguments: arguments,
            environment: workerEnvironment.merging(extraEnvironment) { _, new in new },
            standardInput: FileHandle(fileDescriptor: listenerFd, closeOnDealloc: false),
            logDirectory: directory
        )
        workers.append(worker)
        return worker
    }

    /// nginx with the project's site rendered by deploy/nginx-render into `directory`/nginx,
    /// listening on `port` in front of the worker socket `socket`. The render reads the settings
    /// it shares with the workers (MARQUEE_INTERNAL_NETWORKS, MARQUEE_LEGACY_USERS) from `environment`.
    static func startNginx(in directory: URL, port: Int, socket: String, rates: String, extra: [String] = [],
                           environment: [String: String] = [:], address: String = "127.0.0.1",
                           namespace: String? = nil) throws -> ChildProcess {
        let out = directory.appendingPathComponent("nginx")
        let media = directory.appendingPathComponent("media")
        try FileManager.default.createDirectory(at: media, withIntermediateDirectories: true)
        // In a file: a secret in argv is visible to every local user.
        let secretFile = directory.appendingPathComponent("secure-link.secret")
        try Data((Stack.secureLinkSecret + "\n").utf8).write(to: secretFile)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: secretFile.path)
        // In the namespace too: `nginx -t` binds the listen address, which only exists there.
        let (renderExecutable, renderArguments) = command(
            "/bin/bash",
            [TestPaths.script("deploy/nginx-render"), "--out", out.path, "--listen", "\(address):\(port)",
             "--socket", socket, "--rates", rates, "--media-root", media.path,
             "--secure-link-secret-file", secretFile.path, "--nginx-workers", "1"] + extra,
            in: namespace)
        let render = try ChildProcess("nginx-render", executable: renderExecutable, arguments: renderArguments,
                                      environment: environment, logDirectory: directory)
        guard render.waitForExit(timeout: .seconds(30)) == 0 else {
            throw StackError("deploy/nginx-render failed: \(render.log)")
        }
        let (executable, arguments) = command("/usr/sbin/nginx", ["-p", out.path, "-c", out.appendingPathComponent("nginx.conf").path],
                                              in: namespace)
        return try ChildProcess("nginx", executable: executable, arguments: arguments, logDirectory: directory)
    }

    /// `ip netns exec` enters the namespace and then execs the program in place, so the child's
    /// pid stays the program's own and stopping it by pid still works.
    static func command(_ executable: String, _ arguments: [String], in namespace: String?) -> (String, [String]) {
        guard let namespace else { return (executable, arguments) }
        return (HostNamespaces.ip, ["netns", "exec", namespace, executable] + arguments)
    }

    func waitUntilHealthy(timeout: Duration = .seconds(20)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if await client.status("/api/v1/health") == 200 { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw StackError("no healthy answer within \(timeout); worker log: \(workers.first?.log ?? "")")
    }

    /// The pid of the worker that answered the status page.
    func answeringPid() async -> Int? {
        guard let answer = try? await client.get("/api/v1/status"), answer.status == 200 else { return nil }
        return answer.json()?["pid"] as? Int
    }

    func stop() {
        nginx?.stop()
        for worker in workers { worker.stop() }
        postgres?.remove()
        close(listenerFd)
        try? FileManager.default.removeItem(at: directory)
    }
}

/// Where a stack keeps its records of truth: the embedded store, or a PostgreSQL the stack starts.
enum StorageMode: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case embedded, postgres

    var testDescription: String { rawValue }
}

struct StackError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
