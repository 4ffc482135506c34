import Foundation
import Testing

/// `deploy/run`, the README's command for running the stack, as a developer runs it.
@Suite("deploy/run", .serialized)
struct DeployRunTests {
    @Test("deploy/run serves health, enforces the default rate limits, and stops cleanly on SIGTERM")
    func runsTheStack() async throws {
        let state = TestPaths.temporaryDirectory("deploy-run")
        defer { try? FileManager.default.removeItem(at: state) }
        let port = TestPaths.freePort()
        let run = try ChildProcess(
            "deploy-run", executable: "/bin/bash",
            arguments: [TestPaths.script("deploy/run"), "--port", String(port), "--workers", "2",
                        "--state-dir", state.path, "--binary", TestPaths.marquee],
            // No test reaches the internet: the movies loop would call the real Ghibli API.
            environment: ["MARQUEE_GHIBLI_BASE_URL": "http://127.0.0.1:9"],
            logDirectory: state
        )
        defer { run.stop(grace: .seconds(20)) }
        let client = HTTPClient(base: "http://127.0.0.1:\(port)")

        var healthy = false
        for _ in 0..<200 where !healthy {
            healthy = await client.status("/api/v1/health") == 200
            if !healthy { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(healthy, "deploy/run log: \(run.log)")
        let commit = try Command.output("/usr/bin/git", ["-C", TestPaths.repository.path, "rev-parse", "--short=12", "HEAD"])
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let metrics = try await client.get("/metrics")
        let buildInfo = metrics.text.split(separator: "\n").first { $0.hasPrefix("marquee_build_info{") }
        #expect(buildInfo?.contains("commit=\"\(commit)\"") == true, "deploy/run tells the workers the checkout's commit \(commit): \(buildInfo ?? "")")

        let answers = await withTaskGroup(of: HTTPAnswer?.self) { group in
            for _ in 0..<200 {
                group.addTask { try? await client.get("/api/v1/health") }
            }
            var answers: [HTTPAnswer?] = []
            for await answer in group { answers.append(answer) }
            return answers
        }
        let limited = answers.compactMap { $0 }.filter { $0.status == 429 }
        #expect(!limited.isEmpty)
        #expect(limited.allSatisfy { $0.errorCode == "rate_limited" && $0.header("Content-Type") == "application/json" })

        run.signal(SIGTERM)
        #expect(run.waitForExit(timeout: .seconds(30)) == 0)
        #expect(await client.status("/api/v1/health") == 0, "nothing answers once deploy/run has stopped")
    }

    @Test("deploy/run --database: accounts go to a PostgreSQL cluster in the state directory, kept across runs; a stop stops it too")
    func runsWithADatabase() async throws {
        let state = TestPaths.temporaryDirectory("deploy-run-db")
        defer { try? FileManager.default.removeItem(at: state) }
        let socketDirectory = state.appendingPathComponent("postgres/run").path
        func psql(_ sql: String) throws -> String {
            try Command.output("/usr/lib/postgresql/15/bin/psql", ["-X", "-A", "-t", "-h", socketDirectory, "-U", "marquee", "-d", "postgres", "-c", sql])
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
        for round in 1...2 {
            let port = TestPaths.freePort()
            let run = try ChildProcess(
                "deploy-run-db", executable: "/bin/bash",
                arguments: [TestPaths.script("deploy/run"), "--database", "--port", String(port), "--workers", "2",
                            "--state-dir", state.path, "--binary", TestPaths.marquee],
                environment: ["MARQUEE_GHIBLI_BASE_URL": "http://127.0.0.1:9", "MARQUEE_ADMIN_TOKEN": Stack.adminToken],
                logDirectory: state
            )
            defer { run.stop(grace: .seconds(20)) }
            let client = HTTPClient(base: "http://127.0.0.1:\(port)")
            var up = false
            for _ in 0..<600 where !up {
                up = await client.status("/api/v1/health") == 200 && run.log.contains("Marquee is up")
                if !up { try await Task.sleep(for: .milliseconds(100)) }
            }
            try #require(up, "deploy/run log: \(run.log)")
            let authorization = ["Authorization": "Bearer \(Stack.adminToken)"]
            if round == 1 {
                let body = Data(#"{"id": "kept-user", "name": "Grace Hopper", "subscription": "basic"}"#.utf8)
                let created = try await client.request("POST", "/api/v1/users", headers: authorization.merging(["Content-Type": "application/json"]) { a, _ in a },
                                                       body: body)
                #expect(created.status == 201, "\(created.text)")
            }
            #expect(try psql("SELECT name FROM users WHERE id = 'kept-user'") == "Grace Hopper", "round \(round): the account is in PostgreSQL")
            let read = try await client.get("/api/v1/users/kept-user", headers: authorization)
            #expect(read.status == 200 && read.json()?["name"] as? String == "Grace Hopper", "round \(round): \(read.text)")
            #expect(try await client.get("/api/v1/health").text == #"{"status":"ok"}"#)

            run.signal(SIGTERM)
            #expect(run.waitForExit(timeout: .seconds(30)) == 0)
            #expect(!FileManager.default.fileExists(atPath: state.appendingPathComponent("postgres/data/postmaster.pid").path),
                    "round \(round): PostgreSQL stopped with deploy/run")
        }
    }

    @Test("deploy/run: a random secure_link secret per state directory, mode 0600, kept across runs, never printed nor in any argv")
    func secretPerStateDirectory() async throws {
        let first = TestPaths.temporaryDirectory("deploy-run-secret-a")
        let second = TestPaths.temporaryDirectory("deploy-run-secret-b")
        defer {
            try? FileManager.default.removeItem(at: first)
            try? FileManager.default.removeItem(at: second)
        }
        let a = try await Self.runTraced(state: first)
        let again = try await Self.runTraced(state: first)
        let b = try await Self.runTraced(state: second)
        #expect(a.secret.utf8.count >= 32)
        #expect(a.secret.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") })
        #expect(again.secret == a.secret, "a state directory keeps its secret")
        #expect(b.secret != a.secret, "each state directory has its own")
        #expect(a.secret != "marquee-dev-secret")
    }

    struct TracedRun {
        var secret: String
    }

    /// Runs deploy/run on `state` under strace (every execve of it and its children, with whole
    /// arguments) until it is up, stops it, and checks that the secret it used is in the state's
    /// file of mode 0600 and in the rendered nginx site, but in no argv and not in its output.
    static func runTraced(state: URL) async throws -> TracedRun {
        let port = TestPaths.freePort()
        let trace = state.appendingPathComponent("execve.trace")
        // env --default-signal: strace and deploy/run must not inherit the test runner's signal
        // dispositions, or neither stops on SIGTERM.
        let strace = try ChildProcess(
            "deploy-run-traced", executable: "/usr/bin/env",
            arguments: ["--default-signal", "strace", "-f", "-qq", "--seccomp-bpf", "-e", "trace=execve", "-s", "65536", "-o", trace.path,
                        "/bin/bash", TestPaths.script("deploy/run"), "--port", String(port), "--workers", "1",
                        "--state-dir", state.path, "--binary", TestPaths.marquee],
            environment: ["MARQUEE_GHIBLI_BASE_URL": "http://127.0.0.1:9"],
            logDirectory: state
        )
        // Every process under deploy/run is noted while it is still under it (one whose parent
        // dies leaves the tree), so that whatever happens they are all stopped by pid: deploy/run
        // by SIGTERM, then SIGKILL for whatever of them remains.
        var run: ProcessTable.Entry?
        var started: [ProcessTable.Entry] = []
        func track() {
            let table = ProcessTable()
            // strace forks probes of ptrace and seccomp before its tracee, and a probe may be
            // its first child: deploy/run is the one that has become bash.
            if run == nil { run = table.children(of: strace.pid).first { ProcessTable.arguments($0.pid).first == "/bin/bash" } }
            for process in run.map(table.tree) ?? [] where !started.contains(process) { started.append(process) }
        }
        defer {
            track()
            if let run, ProcessTable.isRunning(run) {
                kill(run.pid, SIGTERM)
                for _ in 0..<400 where ProcessTable.isRunning(run) {
                    usleep(100_000)
                    track()
                }
            }
            for process in started where ProcessTable.isRunning(process) { kill(process.pid, SIGKILL) }
            strace.stop()
        }
        let client = HTTPClient(base: "http://127.0.0.1:\(port)")
        var up = false
        for _ in 0..<300 where !up {
            track()
            // Health answers as soon as nginx listens, a moment before the banner is printed.
            let healthy = await client.status("/api/v1/health") == 200
            up = healthy && strace.log.contains("Marquee is up")
            if !up { try await Task.sleep(for: .milliseconds(100)) }
        }
        try #require(up, "deploy/run log: \(strace.log)")
        let pid = try #require(run).pid
        track()

        let file = state.appendingPathComponent("secure-link.secret")
        let secret = try String(contentsOf: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let mode = try FileManager.default.attributesOfItem(atPath: file.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let site = try String(contentsOf: state.appendingPathComponent("nginx/marquee.conf"), encoding: .utf8)
        #expect(site.contains("\(secret)\""), "nginx checks the links with the file's secret")

        // Stopping on SIGTERM is the first test's, untraced: should this stop hang, the defer
        // stops every process of the run by pid.
        kill(pid, SIGTERM)
        _ = strace.waitForExit(timeout: .seconds(60))
        let output = strace.log
        #expect(!output.contains(secret), "deploy/run printed the secret")
        let calls = try String(contentsOf: trace, encoding: .utf8)
        #expect(calls.contains("nginx-render"), "the trace saw the render")
        #expect(calls.contains("\"pool\""), "the trace saw the pool")
        #expect(!calls.contains(secret), "a process got the secret in its argv")
        return TracedRun(secret: secret)
    }
}

/// The processes running now, from /proc. A process is its pid with its start time, so that
/// a pid reused by a later process is never taken for it.
private struct ProcessTable {
    struct Entry: Hashable {
        var pid: Int32
        var start: UInt64
    }

    private var children: [Int32: [Entry]] = [:]
    private var running: Set<Entry> = []

    init() {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(name), let (parent, entry) = Self.stat(pid) else { continue }
            children[parent, default: []].append(entry)
            running.insert(entry)
        }
    }

    /// The parent and start time of `pid`; nil once it has exited, zombie included.
    private static func stat(_ pid: Int32) -> (parent: Int32, entry: Entry)? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        // The command (field 2 in proc(5)) may hold spaces: the state (3), the parent (4) and the
        // start time (22) are counted from its closing parenthesis.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 19, fields[0] != "Z", let parent = Int32(fields[1]), let start = UInt64(fields[19]) else { return nil }
        return (parent, Entry(pid: pid, start: start))
    }

    /// The arguments `pid` runs with; none once it has exited.
    static func arguments(_ pid: Int32) -> [String] {
        let text = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") ?? Data()
        return text.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
    }

    static func isRunning(_ entry: Entry) -> Bool {
        stat(entry.pid)?.entry == entry
    }

    func children(of pid: Int32) -> [Entry] {
        children[pid] ?? []
    }

    /// `root` and every process under it, each parent before its children.
    func tree(_ root: Entry) -> [Entry] {
        guard running.contains(root) else { return [] }
        var found = [root]
        var next = 0
        while next < found.count {
            found += children[found[next].pid] ?? []
            next += 1
        }
        return found
    }
}
