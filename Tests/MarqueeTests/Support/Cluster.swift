import Foundation

/// Several Marquee hosts on one machine: each a network namespace (HostNamespaces) running the
/// single-host stack (Stack: the project's nginx rendered by deploy/nginx-render, listening on the
/// host's own address, in front of its own `marquee serve` workers and its own LMDB store), with
/// the project's sample front load balancer (nginx/front.conf.template, rendered with
/// `deploy/nginx-render --front`) in the test's own namespace balancing over them.
///
/// The fake internet services listen on the bridge address, which every host reaches; with
/// `database`, so does one PostgreSQL (PostgresServer) that every host uses as its system of
/// record, migrated once before the hosts start.
/// `stop()` stops every process by pid and deletes the namespaces, also after a failure.
final class Cluster: @unchecked Sendable {
    let network: HostNamespaces
    let upstream: FakeUpstream
    private(set) var hosts: [Stack] = []
    private var front: ChildProcess?
    let frontPort: Int
    /// Requests through the front load balancer, as clients would send them.
    let client: HTTPClient
    let directory: URL
    /// The cluster's one database, when asked for.
    let postgres: PostgresServer?

    /// Each host's nginx listens on this port of its own address.
    static let hostPort = 8080

    init(_ label: String, hosts count: Int = 3, workersPerHost: Int = 2, environment: [String: String] = [:],
         database: Bool = false, frontFailTimeout: String = "5s") async throws {
        directory = TestPaths.temporaryDirectory(label + "-front")
        network = try HostNamespaces(hosts: count)
        do {
            upstream = try FakeUpstream(host: network.gateway)
        } catch {
            network.tearDown()
            throw error
        }
        do {
            postgres = database ? try Self.startDatabase(label, on: network) : nil
        } catch {
            upstream.stop()
            network.tearDown()
            throw error
        }
        frontPort = TestPaths.freePort()
        client = HTTPClient(base: "http://127.0.0.1:\(frontPort)")
        do {
            var hostEnvironment = TrailersFixtures.environment(upstream, [
                "MARQUEE_GHIBLI_BASE_URL": upstream.baseURL,
            ])
            if let postgres, let url = postgres.tcpURL {
                hostEnvironment["MARQUEE_DATABASE_URL"] = url
                try migrate(url)
            }
            hostEnvironment.merge(environment) { _, new in new }
            for index in 0..<count {
                hosts.append(try await Stack("\(label)-h\(index + 1)", workers: workersPerHost, environment: hostEnvironment,
                                             renderArguments: ["--access-log", accessLog(index).path],
                                             port: Self.hostPort, address: network.address(ofHost: index),
                                             namespace: network.namespaces[index]))
            }
            front = try startFront(failTimeout: frontFailTimeout)
            try await waitUntilFrontAnswers()
        } catch {
            stop()
            throw error
        }
    }

    /// `http://ADDRESS:PORT` of host `index`'s own nginx, reachable from the test.
    func host(_ index: Int) -> HTTPClient { hosts[index].client }

    /// PostgreSQL on the bridge address, admitting the hosts' subnet.
    private static func startDatabase(_ label: String, on network: HostNamespaces) throws -> PostgresServer {
        let server = try PostgresServer(label, listenAddress: network.gateway)
        do {
            let hba = server.directory.appendingPathComponent("data/pg_hba.conf")
            let handle = try FileHandle(forWritingTo: hba)
            handle.seekToEndOfFile()
            handle.write(Data("host all all \(network.cidr) trust\n".utf8))
            try handle.close()
            try server.psql("SELECT pg_reload_conf()")
        } catch {
            server.remove()
            throw error
        }
        return server
    }

    /// `marquee db migrate`, once for the whole cluster, as an operator runs it before starting hosts.
    private func migrate(_ url: String) throws {
        let migrate = try ChildProcess("db-migrate", executable: TestPaths.marquee, arguments: ["db", "migrate"],
                                       environment: ["MARQUEE_DATABASE_URL": url], logDirectory: directory)
        guard migrate.waitForExit(timeout: .seconds(60)) == 0 else { throw StackError("marquee db migrate failed: \(migrate.log)") }
    }

    private func startFront(failTimeout: String) throws -> ChildProcess {
        let out = directory.appendingPathComponent("nginx")
        let servers = hosts.indices.flatMap { ["--front", "\(network.address(ofHost: $0)):\(Self.hostPort)"] }
        let render = try ChildProcess(
            "front-render", executable: "/bin/bash",
            arguments: [TestPaths.script("deploy/nginx-render"), "--out", out.path, "--listen", "127.0.0.1:\(frontPort)",
                        "--nginx-workers", "1", "--front-fail-timeout", failTimeout] + servers,
            logDirectory: directory
        )
        guard render.waitForExit(timeout: .seconds(30)) == 0 else {
            throw StackError("deploy/nginx-render --front failed: \(render.log)")
        }
        return try ChildProcess("front-nginx", executable: "/usr/sbin/nginx",
                                arguments: ["-p", out.path, "-c", out.appendingPathComponent("nginx.conf").path],
                                logDirectory: directory)
    }

    private func waitUntilFrontAnswers() async throws {
        guard try await eventually(within: .seconds(20), { await client.status("/api/v1/health") == 200 }) else {
            throw StackError("the front load balancer gave no healthy answer; its log: \(front?.log ?? "")")
        }
    }

    /// kill -9 every process of host `index` (nginx's master and workers, the marquee workers).
    @discardableResult
    func killHost(_ index: Int) -> Int {
        network.killEverything(onHost: index)
    }

    /// Host `index`'s nginx access log: which requests that host served.
    func accessLog(_ index: Int) -> URL {
        directory.appendingPathComponent("host\(index + 1).access.log")
    }

    /// How many requests host `index`'s nginx has logged so far.
    func served(byHost index: Int) -> Int {
        ((try? String(contentsOf: accessLog(index), encoding: .utf8)) ?? "").split(separator: "\n").count
    }

    /// The front's error log: which hosts it gave up on, and when.
    var frontErrors: String {
        (try? String(contentsOf: directory.appendingPathComponent("nginx/logs/error.log"), encoding: .utf8)) ?? ""
    }

    func stop() {
        front?.stop()
        for host in hosts { host.stop() }
        network.tearDown()
        upstream.stop()
        postgres?.remove()
        try? FileManager.default.removeItem(at: directory)
    }
}
