import Foundation

/// A process a test started. It is stopped by pid (never by name), also when the test fails:
/// owners call `stop()` in a `defer`, and deinit stops what was left running.
final class ChildProcess: @unchecked Sendable {
    let process = Process()
    let logFile: URL
    let name: String

    init(_ name: String, executable: String, arguments: [String], environment: [String: String] = [:],
         standardInput: FileHandle? = nil, logDirectory: URL) throws {
        self.name = name
        logFile = logDirectory.appendingPathComponent("\(name).log")
        FileManager.default.createFile(atPath: logFile.path, contents: nil)
        let log = try FileHandle(forWritingTo: logFile)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var merged = ProcessInfo.processInfo.environment
        for key in merged.keys where key.hasPrefix("MARQUEE_") || key.hasPrefix("LISTEN_") || key == "NOTIFY_SOCKET" {
            merged.removeValue(forKey: key)
        }
        merged.merge(environment) { _, new in new }
        process.environment = merged
        process.standardOutput = log
        process.standardError = log
        process.standardInput = standardInput ?? FileHandle.nullDevice
        try Self.runWithDefaultSignalMask(process)
    }

    /// Swift concurrency's threads block most signals and a spawned child inherits the mask,
    /// so a script's SIGTERM trap would never fire. Spawning from a thread with nothing
    /// blocked gives the child what a shell would.
    private static func runWithDefaultSignalMask(_ process: Process) throws {
        let outcome = SpawnOutcome()
        let thread = Thread {
            var nothing = sigset_t()
            sigemptyset(&nothing)
            pthread_sigmask(SIG_SETMASK, &nothing, nil)
            do { try process.run() } catch { outcome.error = error }
            outcome.done.signal()
        }
        thread.start()
        outcome.done.wait()
        if let error = outcome.error { throw error }
    }

    private final class SpawnOutcome: @unchecked Sendable {
        let done = DispatchSemaphore(value: 0)
        var error: (any Error)?
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }
    var log: String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }

    func signal(_ signal: Int32) {
        if process.isRunning { kill(pid, signal) }
    }

    /// Waits for the exit and returns its status, or nil when `timeout` passed first.
    func waitForExit(timeout: Duration) -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now >= deadline { return nil }
            usleep(10_000)
        }
        return process.terminationStatus
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`.
    func stop(grace: Duration = .seconds(5)) {
        guard process.isRunning else { return }
        kill(pid, SIGTERM)
        if waitForExit(timeout: grace) == nil {
            kill(pid, SIGKILL)
            _ = waitForExit(timeout: .seconds(5))
        }
    }

    deinit { stop(grace: .seconds(1)) }
}
