import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The unit contract of systemd/ without systemd as PID 1: the unit files pass
/// `systemd-analyze`, and a worker started the way marquee@.service starts it (the socket
/// systemd holds as fd 3 with LISTEN_FDS/LISTEN_PID, a clean environment, $NOTIFY_SOCKET)
/// serves through a real nginx and speaks sd_notify. Tests/lifecycle/run covers the rest
/// under a real systemd.
@Suite("SystemdUnit", .serialized)
struct SystemdUnitTests {
    @Test("systemd-analyze verify accepts marquee.socket, marquee@.service and marquee.target")
    func verify() throws {
        let directory = try UnitCopy("verify")
        defer { directory.remove() }
        let verify = try ChildProcess("verify", executable: "/usr/bin/systemd-analyze",
                                      arguments: ["verify"] + directory.units, logDirectory: directory.url)
        #expect(verify.waitForExit(timeout: .seconds(30)) == 0)
        // Warnings (an unknown key, a bad path) come with status 0: the output must be empty too.
        #expect(verify.log.isEmpty, "\(verify.log)")
    }

    @Test("systemd-analyze security: marquee@.service exposure at most 2.5")
    func exposure() throws {
        let directory = try UnitCopy("security")
        defer { directory.remove() }
        let security = try ChildProcess("security", executable: "/usr/bin/systemd-analyze",
                                        arguments: ["security", "--offline=yes", "--no-pager", directory.path("marquee@.service")],
                                        logDirectory: directory.url)
        #expect(security.waitForExit(timeout: .seconds(30)) == 0)
        let score = security.log.firstMatch(of: /Overall exposure level for [^:]+: ([0-9.]+)/).flatMap { Double($0.1) }
        #expect(score != nil && score! <= 2.5, "\(security.log.split(separator: "\n").last ?? "")")
    }

    @Test("a worker started as marquee@.service starts it serves through nginx, sends READY=1, and STOPPING=1 on SIGTERM")
    func socketActivatedWorker() async throws {
        let directory = TestPaths.temporaryDirectory("activate")
        defer { try? FileManager.default.removeItem(at: directory) }
        let notifications = try NotifySocket(path: directory.appendingPathComponent("notify.sock").path)
        defer { notifications.close() }
        let socketPath = directory.appendingPathComponent("marquee.sock").path

        // systemd-socket-activate holds the listening socket and, on the first connection,
        // execs the worker in its own process with fd 3, LISTEN_FDS/LISTEN_PID and only the
        // variables named here (plus PATH, HOME), as systemd starts marquee@.service.
        let worker = try SpawnedProcess(
            ["/usr/bin/systemd-socket-activate", "-l", socketPath,
             "-E", "NOTIFY_SOCKET=\(notifications.path)",
             "-E", "MARQUEE_STORE_DIR=\(directory.appendingPathComponent("store").path)",
             "-E", "MARQUEE_STORE_MAX_MB=64",
             "-E", "MARQUEE_THREADS=2",
             TestPaths.marquee, "serve"],
            log: directory.appendingPathComponent("worker.log").path
        )
        defer { worker.stop() }
        let nginx = try NginxFront(directory: directory, socket: socketPath)
        defer { nginx.stop() }

        try await nginx.waitUntilHealthy()
        let ready = notifications.receive(containing: "READY=1", timeout: .seconds(10))
        #expect(ready?.contains("MAINPID=\(worker.pid)") == true, "READY message: \(ready ?? "none"); log: \(worker.log)")
        #expect(ready?.contains("STATUS=serving on systemd (fd 3)") == true)
        let status = try await nginx.client.get("/api/v1/status")
        #expect(status.status == 200)
        #expect(status.json()?["pid"] as? Int == Int(worker.pid), "the worker exec'd by systemd-socket-activate answered")

        worker.signal(SIGTERM)
        let stopping = notifications.receive(containing: "STOPPING=1", timeout: .seconds(10))
        #expect(stopping != nil)
        #expect(worker.waitForExit(timeout: .seconds(15)) == 0)
    }
}

/// A child spawned and reaped here rather than through Foundation's Process:
/// systemd-socket-activate closes every descriptor it did not open, among them the socket
/// Foundation watches to learn that a child ended. Foundation then waits for that child in a
/// blocking waitpid() on its one process-watching thread, and no other child of the test run
/// is seen to exit until it does.
private final class SpawnedProcess: @unchecked Sendable {
    let pid: pid_t
    private let logPath: String
    private var exitStatus: Int32?

    init(_ arguments: [String], log: String) throws {
        logPath = log
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Swift concurrency's threads block most signals and a child inherits the mask: start it
        // with nothing blocked, as systemd would.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var nothing = sigset_t()
        sigemptyset(&nothing)
        posix_spawnattr_setsigmask(&attributes, &nothing)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = [strdup("PATH=/usr/sbin:/usr/bin:/sbin:/bin"), nil]
        defer { (argv + envp).forEach { free($0) } }
        var child: pid_t = 0
        let spawned = posix_spawn(&child, arguments[0], &actions, &attributes, argv, envp)
        guard spawned == 0 else { throw StackError("cannot start \(arguments[0]): \(String(cString: strerror(spawned)))") }
        pid = child
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    func signal(_ signal: Int32) {
        if exitStatus == nil { kill(pid, signal) }
    }

    /// The exit status (or 128 + signal), or nil when `timeout` passed first.
    func waitForExit(timeout: Duration) -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while exitStatus == nil {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                let signal = status & 0x7f
                exitStatus = signal == 0 ? (status >> 8) & 0xff : 128 + signal
            } else if ContinuousClock.now >= deadline {
                return nil
            } else {
                usleep(10_000)
            }
        }
        return exitStatus
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`.
    func stop(grace: Duration = .seconds(5)) {
        guard exitStatus == nil else { return }
        kill(pid, SIGTERM)
        if waitForExit(timeout: grace) == nil {
            kill(pid, SIGKILL)
            _ = waitForExit(timeout: .seconds(5))
        }
    }
}

/// A copy of the unit files in a temporary directory. Their ExecStart names the installed
/// binary, /usr/local/bin/marquee, which `systemd-analyze` insists must exist; a drop-in
/// beside them points it at the binary under test and changes nothing else.
private struct UnitCopy {
    let url: URL
    static let names = ["marquee.socket", "marquee@.service", "marquee.target"]

    init(_ label: String) throws {
        url = TestPaths.temporaryDirectory(label)
        for name in Self.names {
            try FileManager.default.copyItem(atPath: TestPaths.script("systemd/\(name)"), toPath: path(name))
        }
        try FileManager.default.createDirectory(atPath: path("marquee@.service.d"), withIntermediateDirectories: true)
        try "[Service]\nExecStart=\nExecStart=\(TestPaths.marquee) serve\n"
            .write(toFile: path("marquee@.service.d/binary-under-test.conf"), atomically: true, encoding: .utf8)
    }

    var units: [String] { Self.names.map(path) }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    func remove() { try? FileManager.default.removeItem(at: url) }
}

/// The datagram socket systemd listens on for sd_notify messages, bound by the test.
private final class NotifySocket: @unchecked Sendable {
    let path: String
    private let fd: Int32

    init(path: String) throws {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard fd >= 0, bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw StackError("cannot make a notify socket at \(path)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else { throw StackError("cannot bind \(path): errno \(errno)") }
    }

    /// The first message holding `text`, skipping others; nil when none came within `timeout`.
    func receive(containing text: String, timeout: Duration) -> String? {
        let deadline = ContinuousClock.now + timeout
        var buffer = [UInt8](repeating: 0, count: 4096)
        while ContinuousClock.now < deadline {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 100) > 0 else { continue }
            let count = recv(fd, &buffer, buffer.count, 0)
            guard count > 0 else { continue }
            let message = String(decoding: buffer[0..<count], as: UTF8.self)
            if message.split(separator: "\n").contains(where: { $0 == text }) { return message }
        }
        return nil
    }

    func close() {
        Glibc.close(fd)
        unlink(path)
    }
}

/// nginx rendered by deploy/nginx-render in front of one worker socket.
private final class NginxFront: @unchecked Sendable {
    let client: HTTPClient
    private let process: ChildProcess

    init(directory: URL, socket: String) throws {
        let port = TestPaths.freePort()
        client = HTTPClient(base: "http://127.0.0.1:\(port)")
        process = try Stack.startNginx(in: directory, port: port, socket: socket, rates: "bench")
    }

    func waitUntilHealthy(timeout: Duration = .seconds(20)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if await client.status("/api/v1/health") == 200 { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw StackError("no healthy answer through nginx within \(timeout): \(process.log)")
    }

    func stop() { process.stop() }
}
