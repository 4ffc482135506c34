import Foundation

/// Delivers SIGTERM, SIGINT and SIGHUP to one waiting thread instead of to whichever thread
/// the kernel picks. libfcgi installs its own SIGTERM handler that only the receiving thread
/// would notice, so the signals are blocked in every thread before any thread exists.
public enum ProcessSignals {
    public static let handled: [Int32] = [SIGTERM, SIGINT, SIGHUP]

    /// Must run on the main thread before any other thread starts: new threads inherit the mask.
    public static func block(_ signals: [Int32] = handled) {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in signals { sigaddset(&set, signal) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// Waits for one of `signals`, or until `timeout` passes (nil then).
    public static func wait(for signals: [Int32] = handled, timeout: Duration? = nil) -> Int32? {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in signals { sigaddset(&set, signal) }
        if let timeout {
            let (seconds, attoseconds) = timeout.components
            var limit = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
            let received = sigtimedwait(&set, nil, &limit)
            return received > 0 ? received : nil
        }
        var received: Int32 = 0
        return sigwait(&set, &received) == 0 ? received : nil
    }
}
