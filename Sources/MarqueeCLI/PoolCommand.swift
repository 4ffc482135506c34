import ArgumentParser
import FastCGI
import Foundation
import Marquee

/// A small supervisor for development and `deploy/run`, where there is no systemd: it holds
/// the listening socket the way the socket unit does and keeps N workers on it.
struct PoolCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pool",
        abstract: "Run N workers on one socket in the foreground, restarting any that dies.",
        discussion: "SIGHUP is passed to every worker (reload); SIGTERM or Ctrl-C drains them and exits."
    )

    @Option(help: "How many worker processes.") var workers: Int = 2
    @Option(help: "The unix socket path (or 127.0.0.1:PORT) the workers share.") var listen: String
    @Option(help: "Octal mode of the unix socket.") var socketMode: String = "0660"
    @Option(help: "Group that owns the unix socket (nginx's group).") var socketGroup: String?
    @Option(help: "Request threads per worker; overrides MARQUEE_THREADS.") var threads: Int?

    func validate() throws {
        guard (1...64).contains(workers) else { throw ValidationError("--workers must be from 1 to 64") }
        guard mode_t(socketMode, radix: 8) != nil else { throw ValidationError("--socket-mode must be octal, like 0660") }
    }

    func run() throws {
        ProcessSignals.block(ProcessSignals.handled + [SIGCHLD])
        let listener: FastCGIListener
        do {
            listener = try FastCGIListener.bind(listen, mode: mode_t(socketMode, radix: 8)!)
        } catch {
            Diagnostics.fail("\(error)", status: .failure)
        }
        if let socketGroup {
            guard let group = getgrnam(socketGroup) else { Diagnostics.fail("no group \(socketGroup)", status: .configuration) }
            chown(listen, uid_t.max, group.pointee.gr_gid)
        }
        var arguments = ["serve"]
        if let threads { arguments += ["--threads", String(threads)] }
        let supervisor = Supervisor(listenerFd: listener.fd, arguments: arguments)
        for slot in 0..<workers { supervisor.spawn(slot) }
        print("marquee pool: \(workers) workers on \(listen)")
        throw ExitCode(supervisor.superviseUntilStopped())
    }
}

final class Supervisor {
    private let listenerFd: Int32
    private let arguments: [String]
    private var children: [pid_t: Int] = [:]
    private let executable: String

    init(listenerFd: Int32, arguments: [String]) {
        self.listenerFd = listenerFd
        self.arguments = arguments
        self.executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    /// Starts a worker with the shared socket as fd 0 and the signals unblocked again.
    func spawn(_ slot: Int) {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, listenerFd, 0)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        // The worker's instance for its metrics: a worker started in a slot where one ran before is a restart.
        setenv("MARQUEE_INSTANCE", String(slot), 1)
        var pid = pid_t()
        let rc = posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
        if rc == 0 {
            children[pid] = slot
        } else {
            FileHandle.standardError.write(Data("marquee pool: cannot start a worker: \(String(cString: strerror(rc)))\n".utf8))
        }
    }

    func superviseUntilStopped() -> Int32 {
        while true {
            let signal = ProcessSignals.wait(for: ProcessSignals.handled + [SIGCHLD], timeout: .seconds(1))
            switch signal {
            case SIGHUP?:
                for pid in children.keys { kill(pid, SIGHUP) }
            case SIGTERM?, SIGINT?:
                return stopAll()
            default:
                reapAndRestart()
            }
        }
    }

    private func reapAndRestart() {
        var status: Int32 = 0
        while true {
            let pid = waitpid(-1, &status, WNOHANG)
            guard pid > 0, let slot = children.removeValue(forKey: pid) else { break }
            let exitStatus = (status & 0x7f) == 0 ? (status >> 8) & 0xff : -1
            if exitStatus == 78 {
                // A configuration error repeats on every restart.
                FileHandle.standardError.write(Data("marquee pool: worker \(pid) refused its configuration; stopping\n".utf8))
                _ = stopAll()
                exit(78)
            }
            FileHandle.standardError.write(Data("marquee pool: worker \(pid) ended (status \(status)); restarting\n".utf8))
            usleep(200_000)
            spawn(slot)
        }
    }

    private func stopAll() -> Int32 {
        for pid in children.keys { kill(pid, SIGTERM) }
        let deadline = ContinuousClock.now + .seconds(30)
        while !children.isEmpty && ContinuousClock.now < deadline {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            if pid > 0 { children.removeValue(forKey: pid) } else { usleep(20_000) }
        }
        for pid in children.keys { kill(pid, SIGKILL) }
        return 0
    }
}
